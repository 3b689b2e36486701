package service_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/service"
)

// TestOneTraceAcrossThreeServices sends one request through edge -> orders ->
// users, three Services in one process on a memory registry sharing a tracer
// provider with an in-memory exporter. users answers its first request 503,
// so orders retries. The request makes one trace whose spans nest across the
// hops, the retry is a client span of its own, orders' /metrics holds the
// route's durations, the client's requests by service and the retry, and its
// access log line carries the trace's ID.
func TestOneTraceAcrossThreeServices(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reg := discovery.NewMemory()

	start := func(name string, logs *logBuffer, h func(*service.Service) http.HandlerFunc) *service.Service {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		svc, err := service.New(name, service.WithListener(ln), service.WithRegistry(reg),
			service.WithLogger(newLogger(logs)), service.WithTracerProvider(tp), service.WithoutDrainDelay(), service.WithShutdown(0, waitFor))
		if err != nil {
			t.Fatal(err)
		}
		svc.HandleFunc("GET /chain", h(svc))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", name, err)
			}
			svc.Client().CloseIdleConnections()
		})
		return svc
	}
	forward := func(next string) func(*service.Service) http.HandlerFunc {
		return func(svc *service.Service) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://"+next+"/chain", nil)
				resp, err := svc.Client().Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				defer resp.Body.Close()
				w.WriteHeader(resp.StatusCode)
				_, _ = io.Copy(w, resp.Body)
			}
		}
	}
	var first atomic.Bool
	first.Store(true)
	start("users", &logBuffer{}, func(*service.Service) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if first.CompareAndSwap(true, false) {
				http.Error(w, "warming up", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "users")
		}
	})
	orderLogs := &logBuffer{}
	orders := start("orders", orderLogs, forward("users"))
	edge := start("edge", &logBuffer{}, forward("orders"))
	waitUntil(t, "all three are registered", func() bool {
		for _, name := range []string{"edge", "orders", "users"} {
			if got, _ := reg.Resolve(context.Background(), name); len(got) != 1 {
				return false
			}
		}
		return true
	})

	code, _, body := get(t, noKeepAlive(), "http://"+edge.Addr().String()+"/chain") // from outside
	if code != http.StatusOK || body != "users" {
		t.Fatalf("edge = %d %q, want 200 from users after a retry", code, body)
	}

	// One trace, nested: server -> client -> server across every hop.
	spans := exp.GetSpans()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	var traceID trace.TraceID
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
		if !traceID.IsValid() {
			traceID = s.SpanContext.TraceID()
		}
		if s.SpanContext.TraceID() != traceID {
			t.Fatalf("span %q is in trace %s, want every span in %s", s.Name, s.SpanContext.TraceID(), traceID)
		}
	}
	var roots, servers, clients []tracetest.SpanStub
	for _, s := range spans {
		switch {
		case !s.Parent.IsValid():
			roots = append(roots, s)
		case s.SpanKind == trace.SpanKindServer:
			if p, ok := byID[s.Parent.SpanID()]; !ok || p.SpanKind != trace.SpanKindClient {
				t.Errorf("server span %q has parent %v, want a client span", s.Name, p.Name)
			}
		case s.SpanKind == trace.SpanKindClient:
			if p, ok := byID[s.Parent.SpanID()]; !ok || p.SpanKind != trace.SpanKindServer {
				t.Errorf("client span %q has parent %v, want a server span", s.Name, p.Name)
			}
		}
		switch s.SpanKind {
		case trace.SpanKindServer:
			servers = append(servers, s)
		case trace.SpanKindClient:
			clients = append(clients, s)
		}
	}
	if len(roots) != 1 || roots[0].SpanKind != trace.SpanKindServer || roots[0].Name != "GET /chain" {
		t.Fatalf("roots = %v, want edge's server span alone", names(roots))
	}
	// edge -> orders: one attempt; orders -> users: two, the 503 and the retry.
	if len(servers) != 4 || len(clients) != 3 {
		t.Fatalf("%d server and %d client spans (%v), want 4 and 3", len(servers), len(clients), names(spans))
	}
	attempts := map[string][]int64{}
	for _, c := range clients {
		attempts[stringAttr(c.Attributes, "pier.service")] = append(attempts[stringAttr(c.Attributes, "pier.service")], intAttr(c.Attributes, "pier.attempt"))
	}
	if got := attempts["users"]; len(got) != 2 || got[0]+got[1] != 3 {
		t.Fatalf("client spans to users have attempts %v, want 1 and 2", got)
	}

	// orders' metrics: the route, the client's requests to users, the retry.
	families := scrape(t, "http://"+orders.Addr().String()+"/metrics")
	for _, want := range []struct {
		family string
		labels map[string]string
	}{
		{"http_server_request_duration_seconds", map[string]string{"http_route": "/chain"}},
		{"pier_client_requests_total", map[string]string{"pier_service": "users", "outcome": "success"}},
		{"pier_client_retries_total", map[string]string{"pier_service": "users"}},
	} {
		mf, ok := families[want.family]
		if !ok || len(series(mf, want.labels)) == 0 {
			t.Errorf("orders' /metrics has no %s%v", want.family, want.labels)
		}
	}

	// orders' access log line carries the trace.
	lines := orderLogs.find(t, "request", "GET /chain")
	if len(lines) != 1 || lines[0]["trace_id"] != traceID.String() || lines[0]["span_id"] == nil {
		t.Fatalf("orders' access log = %v, want one line with trace_id %s and a span_id", lines, traceID)
	}
}

func names(spans []tracetest.SpanStub) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.SpanKind.String() + " " + s.Name
	}
	return out
}

func stringAttr(attrs []attribute.KeyValue, key string) string {
	for _, a := range attrs {
		if string(a.Key) == key {
			return a.Value.AsString()
		}
	}
	return ""
}

func intAttr(attrs []attribute.KeyValue, key string) int64 {
	for _, a := range attrs {
		if string(a.Key) == key {
			return a.Value.AsInt64()
		}
	}
	return 0
}
