package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pier-go/pier/health"
	"github.com/pier-go/pier/service"
)

// TestCheckErrorsLeakedOnPublicPort: /health and the readiness 503 on the
// public listener showed each check's error, which can name internal hosts
// and database errors to anyone who asks. Publicly they now say each check's
// name and status alone; the errors are on the admin listener's /health.
func TestCheckErrorsLeakedOnPublicPort(t *testing.T) {
	t.Parallel()
	const secret = "dial tcp 10.0.0.7:5432: connection refused"
	db := health.CheckerFunc(func(context.Context) error { return errors.New(secret) })
	r := start(t, nil, service.WithAdminAddr("127.0.0.1:0"), service.WithHealthCheck("db", db))
	admin := "http://" + r.svc.AdminAddr().String()
	client := noKeepAlive()

	for _, path := range []string{service.HealthPath, service.ReadyPath} {
		code, h, body := get(t, client, r.url+path)
		if code != http.StatusServiceUnavailable {
			t.Errorf("public GET %s = %d %s, want 503 with a failing critical check", path, code, body)
		}
		if strings.Contains(body, "10.0.0.7") || strings.Contains(body, "connection refused") {
			t.Errorf("public GET %s leaks the check's error: %s", path, body)
		}
		if !strings.Contains(body, "db") {
			t.Errorf("public GET %s does not name the failing check: %s", path, body)
		}
		if path == service.ReadyPath {
			if p := problemOf(t, h, body); p.Detail != "critical check failing: db" {
				t.Errorf("public readiness detail = %q, want the check named alone", p.Detail)
			}
		}
	}
	_, _, body := get(t, client, r.url+service.HealthPath)
	var public map[string]any
	if err := json.Unmarshal([]byte(body), &public); err != nil {
		t.Fatalf("public /health %q: %v", body, err)
	}
	checks, _ := public["checks"].([]any)
	if len(checks) != 1 {
		t.Fatalf("public /health checks = %v, want one", public["checks"])
	}
	if c, _ := checks[0].(map[string]any); len(c) != 2 || c["name"] != "db" || c["status"] != "fail" {
		t.Errorf("public /health check = %v, want its name and status alone", checks[0])
	}

	code, _, body := get(t, client, admin+service.HealthPath)
	var rep health.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("admin /health %q: %v", body, err)
	}
	if code != http.StatusServiceUnavailable || len(rep.Checks) != 1 || rep.Checks[0].Error != secret ||
		!rep.Checks[0].Critical || rep.Checks[0].Status != health.StatusFail {
		t.Errorf("admin GET /health = %d %s, want the check's error in full", code, body)
	}
}
