package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/health"
	"github.com/pier-go/pier/service"
)

// A Service with one route, run until its context ends. The listener is bound
// by the example so that it knows the port; a real main uses WithAddr.
func ExampleNew() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	svc, err := service.New("users",
		service.WithListener(ln),
		service.WithLogger(slog.New(slog.DiscardHandler)),
		service.WithoutDrainDelay(), service.WithShutdown(0, 5*time.Second), // no drain delay: nothing routes to it
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	svc.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = service.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/users/42")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		fmt.Println(resp.Status)
		fmt.Print(string(body))
	} else {
		fmt.Println(err)
	}

	stop()
	fmt.Println("Run returned:", <-done)
	// Output:
	// 200 OK
	// {"id":"42"}
	// Run returned: <nil>
}

// The main function of a service: signals belong to main, which hands Run a
// context that ends on SIGINT or SIGTERM. After the first signal, stop restores
// the default handling, so a second Ctrl-C ends the process at once.
func ExampleService_Run() {
	svc, err := service.New("users", service.WithVersion("1.4.2"))
	if err != nil {
		slog.Error("configure", "error", err)
		os.Exit(1)
	}
	svc.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = service.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	if err := svc.Run(ctx); err != nil {
		svc.Logger().Error("run", "error", err)
		os.Exit(1)
	}
}

// Readiness follows critical checks; a non-critical one only shows in /health.
func ExampleWithHealthCheck() {
	db := health.CheckerFunc(func(ctx context.Context) error { return nil }) // e.g. db.PingContext
	cache := health.CheckerFunc(func(ctx context.Context) error { return fmt.Errorf("cache: connection refused") })
	svc, err := service.New("orders",
		service.WithLogger(slog.New(slog.DiscardHandler)),
		service.WithHealthCheck("db", db, health.Timeout(500*time.Millisecond)),
		service.WithHealthCheck("cache", cache, health.NonCritical()),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	svc.Health().SetState(health.StateServing) // Run does this once it serves

	rec := httptest.NewRecorder()
	svc.ServeHTTP(rec, httptest.NewRequest("GET", service.ReadyPath, nil))
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	// Output:
	// 200 {"status":"warn"}
}

// The built-in middleware also works around any http.Handler.
func ExampleRecover() {
	logger := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("bug") })
	h := service.Recover(logger)(service.RequestID()(mux))

	req := httptest.NewRequest("GET", "/boom", nil)
	req.Header.Set(service.RequestIDHeader, "req-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())
	// Output:
	// 500 application/problem+json
	// {"title":"Internal Server Error","status":500,"detail":"the server failed to handle the request","request_id":"req-1"}
}

func ExampleRequestID() {
	h := service.RequestID()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("handler sees", service.RequestIDFromContext(r.Context()))
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(service.RequestIDHeader, "abc-123")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println("response carries", rec.Header().Get(service.RequestIDHeader))
	// Output:
	// handler sees abc-123
	// response carries abc-123
}

func ExampleAccessLog() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{} // vary from run to run
			}
			return a
		},
	}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})
	h := service.RequestID()(service.AccessLog(logger)(mux))
	req := httptest.NewRequest("GET", "/users/7", nil)
	req.Header.Set(service.RequestIDHeader, "7f3a9c")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// level=INFO msg=request method=GET path=/users/7 route="GET /users/{id}" status=200 bytes=5 request_id=7f3a9c
}

func ExampleTimeout() {
	h := service.Timeout(10 * time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // waits on a dependency until the deadline
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 503 {"title":"Service Unavailable","status":503,"detail":"the request did not complete within 10ms"}
}

func ExampleBodyLimit() {
	h := service.BodyLimit(8)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("not reached")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"far too long"}`)))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 413 {"title":"Request Entity Too Large","status":413,"detail":"request body exceeds the limit of 8 bytes"}
}

// announcing is a Registry that tells when an instance registers: any type
// with Register, Deregister and Resolve is one.
type announcing struct {
	*discovery.Memory
	registered chan discovery.Instance
}

func (a announcing) Register(ctx context.Context, in discovery.Instance) error {
	err := a.Memory.Register(ctx, in)
	select {
	case a.registered <- in:
	default: // told already
	}
	return err
}

// A Service registers itself once it serves and leaves the registry first thing
// when it stops. The memory registry stands in for Consul or any other.
func ExampleWithRegistry() {
	reg := announcing{Memory: discovery.NewMemory(), registered: make(chan discovery.Instance, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	svc, err := service.New("users",
		service.WithListener(ln),
		service.WithLogger(slog.New(slog.DiscardHandler)),
		service.WithRegistry(reg),
		service.WithInstanceID("users-1"),
		service.WithoutDrainDelay(), service.WithShutdown(0, 5*time.Second),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

	in := <-reg.registered // registration runs in the background, once the Service is ready
	fmt.Println("registered:", in.ID, in.Addr == ln.Addr().String())

	stop()
	fmt.Println("Run returned:", <-done)
	_, err = reg.Resolve(context.Background(), "users")
	fmt.Println("after stop:", errors.Is(err, discovery.ErrNoInstances))
	// Output:
	// registered: users-1 true
	// Run returned: <nil>
	// after stop: true
}

// A handler inside a Service reads its request's ID to put it in its own
// calls or records; the access log and every problem carry it already.
func ExampleRequestIDFromContext() {
	svc, err := service.New("users", service.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	svc.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "request ", service.RequestIDFromContext(r.Context()))
	})
	req := httptest.NewRequest("GET", "/whoami", nil)
	req.Header.Set(service.RequestIDHeader, "req-7")
	rec := httptest.NewRecorder()
	svc.ServeHTTP(rec, req)
	fmt.Println(rec.Body)
	// Output:
	// request req-7
}
