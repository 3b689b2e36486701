package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/service"
)

// A Service traces every request with the provider it is given, naming each
// span by the route that matched. Here the provider exports to memory; in
// production it would batch spans to an OTLP collector (or leave the option
// out and set OTEL_EXPORTER_OTLP_ENDPOINT).
func ExampleWithTracerProvider() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	svc, err := service.New("users",
		service.WithTracerProvider(tp),
		service.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	svc.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"id":%q}`, r.PathValue("id"))
	})
	svc.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/users/42", nil))

	for _, s := range exp.GetSpans() {
		fmt.Println(s.Name, s.SpanKind)
	}
	// Output:
	// GET /users/{id} server
}

// NewContextHandler adds the trace and request IDs that a request's context
// carries to every line logged with that context. A Service wraps its logger
// this way already; wrap your own handlers when you log outside it.
func ExampleNewContextHandler() {
	logger := slog.New(service.NewContextHandler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // varies from run to run
			}
			return a
		},
	})))

	// The context of a request traced by a caller, as the Service's middleware
	// makes it; the IDs are fixed here so that the output is.
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))

	logger.InfoContext(ctx, "user loaded", "user", 42)
	logger.Info("no context, no IDs")
	// Output:
	// level=INFO msg="user loaded" user=42 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7
	// level=INFO msg="no context, no IDs"
}
