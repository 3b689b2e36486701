package service_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/service"
)

// TestClientContinuesTheServersTrace runs orders -> users on a memory
// registry: the client span of orders' call is a child of orders' server span
// and the parent of users' server span, all in one trace, and orders serves
// the client's metrics at its /metrics.
func TestClientContinuesTheServersTrace(t *testing.T) {
	t.Parallel()
	tp, exp := tracing(t)
	reg := discovery.NewMemory()
	run := func(name string, opts []service.Option, routes func(*service.Service)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := []service.Option{service.WithListener(ln), service.WithRegistry(reg), service.WithTracerProvider(tp),
			service.WithLogger(slog.New(slog.DiscardHandler)), service.WithoutDrainDelay(), service.WithShutdown(0, waitFor)}
		svc, err := service.New(name, append(base, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		routes(svc)
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
		return "http://" + ln.Addr().String()
	}
	run("users", nil, userRoute)
	ordersURL := run("orders", nil, func(s *service.Service) {
		s.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
			req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://users/users/7", nil)
			resp, err := s.Client().Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(w, resp.Body)
		})
	})
	waitUntil(t, "users is registered", func() bool {
		got, _ := reg.Resolve(context.Background(), "users")
		return len(got) == 1
	})
	if code, _, body := get(t, noKeepAlive(), ordersURL+"/orders/1"); code != http.StatusOK {
		t.Fatalf("GET /orders/1 = %d %s", code, body)
	}

	orders := spansNamed(t, exp, "GET /orders/{id}", 1)[0]
	users := spansNamed(t, exp, "GET /users/{id}", 1)[0]
	var client *trace.SpanContext
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			if client != nil {
				t.Fatalf("more than one client span: the call was not retried, so want one")
			}
			sc := s.SpanContext
			client = &sc
			if s.Parent.SpanID() != orders.SpanContext.SpanID() {
				t.Errorf("client span's parent = %s, want orders' server span %s", s.Parent.SpanID(), orders.SpanContext.SpanID())
			}
		}
	}
	if client == nil {
		t.Fatal("no client span: Service.Client did not get the Service's tracer provider")
	}
	if users.Parent.SpanID() != client.SpanID() || users.SpanContext.TraceID() != orders.SpanContext.TraceID() {
		t.Errorf("users' span: trace %s parent %s, want trace %s parent %s (the client span)",
			users.SpanContext.TraceID(), users.Parent.SpanID(), orders.SpanContext.TraceID(), client.SpanID())
	}
	if scrape(t, ordersURL+"/metrics")["http_client_request_duration_seconds"] == nil {
		t.Error("orders' /metrics has no client metrics: Service.Client did not get the Service's meter provider")
	}
}

// TestClientOptionsWinOverTheServicesTelemetry gives the client a tracer
// provider of its own through WithClientOptions: its spans go there.
func TestClientOptionsWinOverTheServicesTelemetry(t *testing.T) {
	t.Parallel()
	serverTP, serverSpans := tracing(t)
	clientTP, clientSpans := tracing(t)
	backend := start(t, userRoute)
	svc, err := service.New("orders", service.WithTracerProvider(serverTP),
		service.WithLogger(slog.New(slog.DiscardHandler)),
		service.WithClientOptions(discovery.WithTracerProvider(clientTP)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Client().CloseIdleConnections()
	code, _, body := get(t, svc.Client(), backend.url+"/users/1")
	if code != http.StatusOK {
		t.Fatalf("GET = %d %s", code, body)
	}
	if n := len(clientSpans.GetSpans()); n != 1 {
		t.Errorf("client spans in the client's provider = %d, want 1", n)
	}
	for _, s := range serverSpans.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			t.Errorf("a client span went to the Service's provider, not the one of WithClientOptions")
		}
	}
}
