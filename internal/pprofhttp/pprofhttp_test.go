package pprofhttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegister(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	tests := []struct {
		method, target string
		status         int
		contains       string
		contentType    string
	}{
		{"GET", "/debug/pprof/", 200, "goroutine", "text/html"},
		{"GET", "/debug/pprof/heap?debug=1", 200, "heap profile", "text/plain"},
		{"GET", "/debug/pprof/goroutine", 200, "", "application/octet-stream"},
		{"GET", "/debug/pprof/nonesuch", 404, "unknown profile", "text/plain"},
		{"GET", "/debug/pprof/heap?seconds=5", 400, "delta profiles", "text/plain"},
		{"GET", "/debug/pprof/cmdline", 200, "", "text/plain"},
		{"GET", "/debug/pprof/symbol", 200, "num_symbols: 1", "text/plain"},
		{"POST", "/debug/pprof/symbol", 200, "num_symbols: 1", "text/plain"},
		{"POST", "/debug/pprof/heap", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, strings.NewReader("0x0")))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.contains) ||
				!strings.HasPrefix(rec.Header().Get("Content-Type"), tt.contentType) {
				t.Fatalf("= %d %q %.200s, want %d %q containing %q",
					rec.Code, rec.Header().Get("Content-Type"), rec.Body, tt.status, tt.contentType, tt.contains)
			}
		})
	}
}

func TestProfileEndsWithTheRequest(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	for _, path := range []string{"/debug/pprof/profile?seconds=60", "/debug/pprof/trace?seconds=60"} {
		// Were the request's end ignored, this would take a minute and the
		// test binary's timeout would tell.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", path, nil))
		cancel()
		if rec.Code != http.StatusOK {
			t.Errorf("%s = %d, want 200", path, rec.Code)
		}
	}
}
