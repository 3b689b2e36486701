package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/slogtest"

	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/service"
)

func TestContextHandlerIsAHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	newHandler := func(*testing.T) slog.Handler {
		buf.Reset()
		return service.NewContextHandler(slog.NewJSONHandler(&buf, nil))
	}
	result := func(t *testing.T) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	slogtest.Run(t, newHandler, result)
}

// requestContext returns the context of a traced request with an ID, as the
// Service's middleware makes it.
func requestContext(t *testing.T) (ctx context.Context, traceID, spanID, requestID string) {
	t.Helper()
	h := service.RequestID()(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { ctx = r.Context() }))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(service.RequestIDHeader, "req-7")
	h.ServeHTTP(httptest.NewRecorder(), req)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	return ctx, tid.String(), sid.String(), "req-7"
}

func TestContextHandlerAddsIDs(t *testing.T) {
	t.Parallel()
	ctx, traceID, spanID, requestID := requestContext(t)
	var buf bytes.Buffer
	base := slog.New(service.NewContextHandler(slog.NewJSONHandler(&buf, nil)))
	decode := func() map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("%v: %s", err, buf.Bytes())
		}
		buf.Reset()
		return m
	}
	ids := map[string]any{"trace_id": traceID, "span_id": spanID, "request_id": requestID}

	t.Run("context", func(t *testing.T) {
		base.InfoContext(ctx, "hello")
		got := decode()
		for k, v := range ids {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	})
	t.Run("no context", func(t *testing.T) {
		base.Info("hello")
		got := decode()
		for k := range ids {
			if _, ok := got[k]; ok {
				t.Errorf("%s added without a context: %v", k, got)
			}
		}
	})
	t.Run("WithAttrs", func(t *testing.T) {
		base.With("service", "users").LogAttrs(ctx, slog.LevelInfo, "hello")
		got := decode()
		if got["service"] != "users" || got["trace_id"] != traceID {
			t.Errorf("line = %v, want service and trace_id", got)
		}
	})
	t.Run("WithGroup", func(t *testing.T) {
		base.WithGroup("g").InfoContext(ctx, "hello", "k", "v")
		got := decode()
		g, _ := got["g"].(map[string]any)
		if g["k"] != "v" || g["trace_id"] != traceID {
			t.Errorf("line = %v, want k and trace_id in group g", got)
		}
	})
	t.Run("wrapped twice", func(t *testing.T) {
		twice := slog.New(service.NewContextHandler(base.Handler()))
		twice.InfoContext(ctx, "hello")
		if n := bytes.Count(buf.Bytes(), []byte(`"trace_id"`)); n != 1 {
			t.Errorf("trace_id appears %d times: %s", n, buf.Bytes())
		}
		buf.Reset()
	})
	t.Run("invalid span context", func(t *testing.T) {
		base.InfoContext(trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), "hello")
		if got := decode(); got["trace_id"] != nil {
			t.Errorf("trace_id for an invalid span context: %v", got)
		}
	})
}

func TestContextHandlerNil(t *testing.T) {
	t.Parallel()
	h := service.NewContextHandler(nil)
	if h.Enabled(context.Background(), slog.LevelError) {
		t.Error("NewContextHandler(nil) is enabled; want it to discard")
	}
	if err := h.Handle(context.Background(), slog.Record{}); err != nil {
		t.Error(err)
	}
}
