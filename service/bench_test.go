package service_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pier-go/pier/service"
)

// nopWriter is the cheapest http.ResponseWriter, so the benchmarks measure the
// middleware and not a recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// discard is a span processor that drops every span: the tracing cases
// measure making spans, not exporting them.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

// BenchmarkStack measures what the default middleware stack costs per request
// over the same http.ServeMux route served bare, in memory (no network), so
// the difference is the stack alone. Every case pays for the per-request
// context and request copy that net/http makes. The access log writes JSON to
// io.Discard.
//
// default+otel-off is the default Service: the global tracer provider, which
// records nothing as no program here sets one, and the Service's own metrics
// (a Prometheus reader). no-metrics has no metrics endpoint, so nothing is
// measured; tracing-1% and tracing-always trace with the SDK, sampling 1% of
// root spans or all of them, into a processor that drops them.
func BenchmarkStack(b *testing.B) {
	user := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
	}
	bare := http.NewServeMux()
	bare.HandleFunc("GET /users/{id}", user)

	newSvc := func(b *testing.B, opts ...service.Option) http.Handler {
		logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
		svc, err := service.New("users", append([]service.Option{service.WithLogger(logger)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		svc.HandleFunc("GET /users/{id}", user)
		return svc
	}
	sampled := func(b *testing.B, s sdktrace.Sampler) service.Option {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(s), sdktrace.WithSpanProcessor(discard{}))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return service.WithTracerProvider(tp)
	}
	cases := []struct {
		name string
		h    func(*testing.B) http.Handler
	}{
		{"bare", func(*testing.B) http.Handler { return bare }},
		{"default+otel-off", func(b *testing.B) http.Handler { return newSvc(b) }},
		{"no-access-log", func(b *testing.B) http.Handler { return newSvc(b, service.WithoutAccessLog()) }},
		{"no-metrics", func(b *testing.B) http.Handler { return newSvc(b, service.WithoutMetricsEndpoint()) }},
		{"tracing-1%", func(b *testing.B) http.Handler { return newSvc(b, sampled(b, sdktrace.TraceIDRatioBased(0.01))) }},
		{"tracing-always", func(b *testing.B) http.Handler { return newSvc(b, sampled(b, sdktrace.AlwaysSample())) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := c.h(b)
			base := httptest.NewRequest("GET", "/users/42", nil)
			w := &nopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				// net/http gives each request a cancelable context of its own;
				// a deadline set under it costs more than one under Background.
				ctx, cancel := context.WithCancel(context.Background())
				clear(w.h)
				h.ServeHTTP(w, base.WithContext(ctx))
				cancel()
			}
		})
	}
}
