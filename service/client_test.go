package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/service"
)

// TestDeadlineCrossesThreeHops runs edge -> orders -> users as three Services
// on one memory registry, each calling the next through Client() with the
// incoming request's context. The edge gives requests 2 s; users allows 30 s
// of its own, yet sees the edge's deadline.
func TestDeadlineCrossesThreeHops(t *testing.T) {
	t.Parallel()
	reg := discovery.NewMemory()
	seen := make(chan time.Duration, 1)
	forward := func(svc *service.Service, next string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			req, err := http.NewRequestWithContext(r.Context(), "GET", "http://"+next+"/chain", nil)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
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
	newSvc := func(name string, timeout time.Duration, h func(*service.Service) http.HandlerFunc) *service.Service {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		svc, err := service.New(name, service.WithListener(ln), service.WithRegistry(reg),
			service.WithLogger(slog.New(slog.DiscardHandler)), service.WithRequestTimeout(timeout),
			service.WithoutDrainDelay(), service.WithShutdown(0, waitFor))
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
	newSvc("users", 30*time.Second, func(*service.Service) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			dl, ok := r.Context().Deadline()
			if !ok {
				http.Error(w, "no deadline", 500)
				return
			}
			seen <- time.Until(dl)
			fmt.Fprint(w, "users")
		}
	})
	newSvc("orders", 30*time.Second, func(s *service.Service) http.HandlerFunc { return forward(s, "users") })
	edge := newSvc("edge", 2*time.Second, func(s *service.Service) http.HandlerFunc { return forward(s, "orders") })

	waitUntil(t, "all three are registered", func() bool {
		for _, name := range []string{"edge", "orders", "users"} {
			if got, _ := reg.Resolve(context.Background(), name); len(got) != 1 {
				return false
			}
		}
		return true
	})
	code, _, body := get(t, edge.Client(), "http://edge/chain")
	if code != http.StatusOK || body != "users" {
		t.Fatalf("edge = %d %q, want 200 from users", code, body)
	}
	left := <-seen
	t.Logf("users saw %v left of the edge's 2s", left)
	if left <= 0 || left > 2*time.Second {
		t.Fatalf("users had %v left, want the edge's 2 s budget (not its own 30 s)", left)
	}
}

// TestWithResolverSeparatesResolvingFromRegistering: a Service registers in
// one registry and its client resolves through another, as on Kubernetes
// (register nowhere, resolve from DNS) or in tests (register in Consul,
// resolve from a static list).
func TestWithResolverSeparatesResolvingFromRegistering(t *testing.T) {
	t.Parallel()
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "users from the static list")
	}))
	t.Cleanup(users.Close)
	static, err := discovery.NewStatic(map[string][]string{"users": {users.Listener.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	registered := discovery.NewMemory() // where the Service registers; users is not in it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New("orders", service.WithListener(ln), service.WithRegistry(registered),
		service.WithResolver(static), service.WithLogger(slog.New(slog.DiscardHandler)), service.WithoutDrainDelay(), service.WithShutdown(0, waitFor))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		svc.Client().CloseIdleConnections()
	})
	waitUntil(t, "orders is registered in its registry", func() bool {
		got, _ := registered.Resolve(context.Background(), "orders")
		return len(got) == 1
	})
	code, _, body := get(t, svc.Client(), "http://users/")
	if code != http.StatusOK || body != "users from the static list" {
		t.Fatalf("GET http://users/ = %d %q, want 200 from the static list's instance", code, body)
	}
	if got, _ := static.Resolve(context.Background(), "orders"); len(got) != 0 {
		t.Fatalf("orders registered in the resolver too: %v", got)
	}
}
