package health_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pier-go/pier/health"
)

// discard is a ResponseWriter that keeps nothing, so the benchmark measures the
// handler rather than a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func BenchmarkReadyCached(b *testing.B) {
	m := newMonitor(b, health.StateServing, []entry{
		{name: "db", c: passing()},
		{name: "queue", c: passing()},
		{name: "cache", c: passing()},
	}, health.WithCacheTTL(1<<62)) // results stay cached for the whole benchmark
	h := m.ReadyHandler()
	req := httptest.NewRequest(http.MethodGet, "/health/ready", nil)
	w := &discard{h: make(http.Header)}
	h.ServeHTTP(w, req) // fill the cache
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
