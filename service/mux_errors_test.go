package service_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pier-go/pier/service"
)

// opaqueMiddleware wraps the writer in a type without Unwrap, hiding the
// Service's own writer from everything inside it.
func opaqueMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(opaque{w}, r)
	})
}

type opaque struct{ http.ResponseWriter }

// muxErrorRoutes are the routes of TestMuxErrorsWerePlainText.
func muxErrorRoutes(s *service.Service) {
	s.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.PathValue("name"))
	})
	s.HandleFunc("POST /only", func(w http.ResponseWriter, r *http.Request) {})
	s.HandleFunc("GET /dir/", func(w http.ResponseWriter, r *http.Request) {})
	s.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such user", http.StatusNotFound) // the route's own answer
	})
}

// TestMuxErrorsWerePlainText: the answers http.ServeMux writes itself, 404 for
// a path no route matches and 405 for a method the path's routes do not take,
// were net/http's "404 page not found" in text/plain, although every error
// the framework writes is an RFC 9457 problem. They are problems now, with the
// request and trace IDs, the 405 keeping its Allow header, whatever the
// client accepts and behind middleware that hides the Service's writer; the
// answers of routes and the mux's redirects are left alone.
func TestMuxErrorsWerePlainText(t *testing.T) {
	t.Parallel()
	for _, mw := range []struct {
		name string
		opts []service.Option
	}{
		{"stack", nil},
		{"opaque-middleware", []service.Option{service.WithMiddleware(opaqueMiddleware)}},
	} {
		t.Run(mw.name, func(t *testing.T) {
			t.Parallel()
			tp, _ := tracing(t)
			r := start(t, muxErrorRoutes, append([]service.Option{service.WithTracerProvider(tp)}, mw.opts...)...)
			client := noKeepAlive()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			tests := []struct {
				name, method, path, accept string
				status                     int
				allow                      string // the Allow header a 405 must keep
				detail                     string
			}{
				{"not found", "GET", "/nope", "", http.StatusNotFound, "", "no route"},
				{"not found accepting html", "GET", "/nope", "text/html", http.StatusNotFound, "", "no route"},
				{"not found accepting text", "GET", "/nope", "text/plain", http.StatusNotFound, "", "no route"},
				{"not found HEAD", "HEAD", "/nope", "", http.StatusNotFound, "", ""},
				{"wrong method", "POST", "/hello/ada", "", http.StatusMethodNotAllowed, "GET, HEAD", "POST"},
				{"wrong method accepting anything", "DELETE", "/hello/ada", "*/*", http.StatusMethodNotAllowed, "GET, HEAD", "DELETE"},
				{"wrong method HEAD", "HEAD", "/only", "", http.StatusMethodNotAllowed, "POST", ""},
			}
			for _, tt := range tests {
				req, err := http.NewRequest(tt.method, r.url+tt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.accept != "" {
					req.Header.Set("Accept", tt.accept)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if resp.StatusCode != tt.status {
					t.Errorf("%s: %s %s = %d %q, want %d", tt.name, tt.method, tt.path, resp.StatusCode, body, tt.status)
					continue
				}
				if got := resp.Header.Get("Allow"); got != tt.allow {
					t.Errorf("%s: Allow = %q, want %q", tt.name, got, tt.allow)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("%s: Content-Type = %q (body %q), want application/problem+json", tt.name, ct, body)
					continue
				}
				if tt.method == "HEAD" {
					if len(body) != 0 {
						t.Errorf("%s: HEAD answer has a body %q", tt.name, body)
					}
					continue
				}
				p := problemOf(t, resp.Header, string(body))
				if p.Status != tt.status || p.Title != http.StatusText(tt.status) || !strings.Contains(p.Detail, tt.detail) {
					t.Errorf("%s: problem %+v, want status %d, its title and a detail naming %q", tt.name, p, tt.status, tt.detail)
				}
				if id := resp.Header.Get(service.RequestIDHeader); id == "" || p.RequestID != id {
					t.Errorf("%s: problem request_id %q, response X-Request-ID %q: want the same, set", tt.name, p.RequestID, id)
				}
				if len(p.TraceID) != 32 {
					t.Errorf("%s: problem trace_id %q, want the request's trace ID", tt.name, p.TraceID)
				}
				if strings.Contains(string(body), "page not found") || strings.Contains(string(body), "Method Not Allowed\n") {
					t.Errorf("%s: net/http's text leaked into the problem: %q", tt.name, body)
				}
			}

			// What routes answer, and the mux's redirects, are not the mux's errors.
			code, h, body := get(t, client, r.url+"/users/7")
			if code != http.StatusNotFound || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || body != "no such user\n" {
				t.Errorf("a route's own 404 = %d %q %q, want it untouched", code, h.Get("Content-Type"), body)
			}
			if code, h, _ := get(t, client, r.url+"/dir"); code != http.StatusTemporaryRedirect || h.Get("Location") != "/dir/" {
				t.Errorf("GET /dir = %d, Location %q; want the mux's redirect to /dir/", code, h.Get("Location"))
			}
			if code, _, body := get(t, client, r.url+"/hello/ada"); code != http.StatusOK || body != "hello ada" {
				t.Errorf("GET /hello/ada = %d %q", code, body)
			}
		})
	}
}

// TestAdminMuxErrorsWerePlainText: the admin listener's mux answered unknown
// paths and wrong methods in text/plain too; its answers are problems now,
// and its routes' own answers are left alone.
func TestAdminMuxErrorsWerePlainText(t *testing.T) {
	t.Parallel()
	r := start(t, nil, service.WithAdminAddr("127.0.0.1:0"))
	admin := "http://" + r.svc.AdminAddr().String()
	client := noKeepAlive()

	code, h, body := get(t, client, admin+"/nope")
	if p := problemOf(t, h, body); code != http.StatusNotFound || p.Status != http.StatusNotFound {
		t.Errorf("admin GET /nope = %d %+v, want a 404 problem", code, p)
	}
	resp, err := client.Post(admin+service.DefaultMetricsPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if p := problemOf(t, resp.Header, string(b)); resp.StatusCode != http.StatusMethodNotAllowed ||
		p.Status != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("admin POST /metrics = %d, Allow %q, %+v; want a 405 problem allowing GET, HEAD",
			resp.StatusCode, resp.Header.Get("Allow"), p)
	}
	if code, h, _ := get(t, client, admin+service.DefaultMetricsPath); code != http.StatusOK ||
		!strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("admin GET /metrics = %d %q, want the Prometheus text", code, h.Get("Content-Type"))
	}
}
