package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pier-go/pier/health"
	"github.com/pier-go/pier/service"
)

func TestNewRejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		svc  string
		opts []service.Option
		want string
	}{
		{"empty name", "", nil, "invalid service name"},
		{"upper case", "Users", nil, "invalid service name"},
		{"leading hyphen", "-users", nil, "invalid service name"},
		{"dot", "users.v1", nil, "invalid service name"},
		{"too long", strings.Repeat("a", 64), nil, "invalid service name"},
		{"nil option", "users", []service.Option{nil}, "nil option"},
		{"empty address", "users", []service.Option{service.WithAddr("")}, "empty address"},
		{"nil middleware", "users", []service.Option{service.WithMiddleware(nil)}, "nil middleware"},
		{"nil start hook", "users", []service.Option{service.WithOnStart(nil)}, "nil hook"},
		{"nil stop hook", "users", []service.Option{service.WithOnStop(nil)}, "nil hook"},
		{"negative stop timeout", "users", []service.Option{service.WithStopTimeout(-time.Second)}, "negative stop timeout"},
		{"negative request timeout", "users", []service.Option{service.WithRequestTimeout(-time.Second)}, "negative request timeout"},
		{"negative body limit", "users", []service.Option{service.WithBodyLimit(-1)}, "negative body limit"},
		{"negative drain delay", "users", []service.Option{service.WithShutdown(-time.Second, 0)}, "negative drain delay"},
		{"negative shutdown timeout", "users", []service.Option{service.WithShutdown(0, -time.Second)}, "negative shutdown timeout"},
		{"duplicate check", "users", []service.Option{
			service.WithHealthCheck("db", health.CheckerFunc(func(context.Context) error { return nil })),
			service.WithHealthCheck("db", health.CheckerFunc(func(context.Context) error { return nil })),
		}, "db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := append([]service.Option{service.WithLogger(newLogger(&logBuffer{}))}, tt.opts...)
			svc, err := service.New(tt.svc, opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%q) = %v, %v; want an error containing %q", tt.svc, svc, err, tt.want)
			}
		})
	}
}

func TestInFlightRequestCompletesAfterCancel(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
			fmt.Fprint(w, "finished")
		})
	})

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := noKeepAlive().Get(r.url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-entered
	r.cancel()

	// Shutdown has begun once the listener is closed: new connections fail.
	waitUntil(t, "the listener is closed", func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
		if err != nil {
			return true
		}
		_ = c.Close()
		return false
	})
	select {
	case err := <-r.done:
		t.Fatalf("Run returned %v while a request was in flight", err)
	default:
	}
	close(release)

	res := <-got
	if res.err != nil || res.status != http.StatusOK || res.body != "finished" {
		t.Fatalf("in-flight request = %d %q, %v; want 200 \"finished\"", res.status, res.body, res.err)
	}
	if _, err := r.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil after a clean stop", err)
	}
}

func TestPortInUseFailsAtOnce(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	started := false
	svc, err := service.New("test",
		service.WithAddr(taken.Addr().String()),
		service.WithLogger(newLogger(&logBuffer{})),
		service.WithOnStart(func(context.Context) error { started = true; return nil }),
	)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }() // never cancelled: it must fail by itself
	select {
	case err = <-done:
	case <-time.After(waitFor):
		t.Fatal("Run did not return on a port in use")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Run = %v, want EADDRINUSE", err)
	}
	if started {
		t.Fatal("OnStart ran although the listener could not be bound")
	}
}

func TestHooksRunInOrderAndStopInReverse(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls []string
	note := func(s string) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, s)
			return nil
		}
	}
	r := start(t, nil,
		service.WithOnStart(note("start 1")), service.WithOnStop(note("stop 1")),
		service.WithOnStart(note("start 2")),
		service.WithOnStart(note("start 3")), service.WithOnStop(note("stop 3")),
		service.WithOnStop(note("stop 4")),
	)
	r.cancel()
	if _, err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	want := []string{"start 1", "start 2", "start 3", "stop 4", "stop 3", "stop 1"}
	if !slices.Equal(calls, want) {
		t.Fatalf("hooks ran %q, want %q", calls, want)
	}
}

// TestFailingStartHookStopsEarlierHooks: when an OnStart fails, the OnStop
// hooks given before it run, in reverse, and those given after it do not: a
// resource's WithOnStop right after its WithOnStart stops exactly what
// started.
func TestFailingStartHookStopsEarlierHooks(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	note := func(s string, err error) func(context.Context) error {
		return func(context.Context) error { calls = append(calls, s); return err }
	}
	boom := errors.New("boom")
	stopErr := errors.New("stop failed")
	svc, err := service.New("test",
		service.WithListener(ln),
		service.WithLogger(newLogger(&logBuffer{})),
		service.WithOnStart(note("start 1", nil)), service.WithOnStop(note("stop 1", stopErr)),
		service.WithOnStop(note("stop 1b", nil)),
		service.WithOnStart(note("start 2", boom)), service.WithOnStop(note("stop 2", nil)),
		service.WithOnStart(note("start 3", nil)), service.WithOnStop(note("stop 3", nil)),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = svc.Run(context.Background())
	if !errors.Is(err, boom) || !errors.Is(err, stopErr) {
		t.Fatalf("Run = %v, want both the start and the stop error", err)
	}
	if !strings.Contains(err.Error(), "start hook 2") || !strings.Contains(err.Error(), "stop hook 1") {
		t.Fatalf("Run = %v, want the failing hooks named by their place among their kind", err)
	}
	if want := []string{"start 1", "start 2", "stop 1b", "stop 1"}; !slices.Equal(calls, want) {
		t.Fatalf("hooks ran %q, want %q", calls, want)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		_ = c.Close()
		t.Fatal("the listener is still open after a failed start")
	}
}

func TestBadRouteFailsRun(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New("test", service.WithListener(ln), service.WithLogger(newLogger(&logBuffer{})))
	if err != nil {
		t.Fatal(err)
	}
	ok := func(http.ResponseWriter, *http.Request) {}
	svc.HandleFunc("GET /users/{id}", ok)
	svc.HandleFunc("GET /users/{name}", ok) // conflicts with the first
	svc.HandleFunc("GET /nil", nil)
	err = svc.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"GET /users/{name}"`) || !strings.Contains(err.Error(), "nil handler") {
		t.Fatalf("Run = %v, want the conflicting pattern and the nil handler named", err)
	}
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	if err := r.svc.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Fatalf("second Run = %v, want an error", err)
	}
}

func TestReadinessBeforeRun(t *testing.T) {
	t.Parallel()
	svc, err := service.New("test", service.WithLogger(newLogger(&logBuffer{})))
	if err != nil {
		t.Fatal(err)
	}
	// Before Run the stack serves (ServeHTTP), and readiness says "starting".
	rec := serve(svc, "GET", service.ReadyPath, nil)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "starting") {
		t.Fatalf("ready before Run = %d %s, want 503 starting", rec.Code, rec.Body)
	}
	if rec := serve(svc, "GET", service.LivePath, nil); rec.Code != http.StatusOK {
		t.Fatalf("live before Run = %d, want 200", rec.Code)
	}
}

func TestServingReadinessFollowsCriticalChecks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var dbErr error
	r := start(t, nil, service.WithHealthCheck("db", health.CheckerFunc(func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return dbErr
	})))
	if code, _, body := get(t, http.DefaultClient, r.url+service.ReadyPath); code != http.StatusOK {
		t.Fatalf("ready = %d %s, want 200", code, body)
	}
	mu.Lock()
	dbErr = errors.New("connection refused")
	mu.Unlock()
	waitUntil(t, "readiness sees the failing check", func() bool {
		code, _, _ := get(t, http.DefaultClient, r.url+service.ReadyPath)
		return code == http.StatusServiceUnavailable
	})
	_, h, body := get(t, http.DefaultClient, r.url+service.ReadyPath)
	if p := problemOf(t, h, body); p.Detail != "critical check failing: db" {
		t.Fatalf("ready detail = %q, want the failing check named (its error stays private)", p.Detail)
	}
	if code, _, _ := get(t, http.DefaultClient, r.url+service.LivePath); code != http.StatusOK {
		t.Fatalf("live = %d with a failing dependency, want 200", code)
	}
}

func TestShutdownTimeoutCutsStuckRequests(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /stuck", func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-r.Context().Done() // ends when the server closes the connection
		})
	}, service.WithoutDrainDelay(), service.WithShutdown(0, 50*time.Millisecond), service.WithoutRequestTimeout())
	failed := make(chan error, 1)
	go func() {
		resp, err := noKeepAlive().Get(r.url + "/stuck")
		if err == nil {
			drain(resp)
		}
		failed <- err
	}()
	<-entered
	r.cancel()
	_, err := r.wait(t)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "shutdown") {
		t.Fatalf("Run = %v, want a shutdown deadline error", err)
	}
	if err := <-failed; err == nil {
		t.Fatal("the stuck request got an answer; want its connection closed")
	}
}

func TestListenerClosedAfterRun(t *testing.T) {
	t.Parallel()
	r := start(t, nil)
	addr := strings.TrimPrefix(r.url, "http://")
	if got := r.svc.Addr(); got == nil || got.String() != addr {
		t.Fatalf("Addr() = %v, want %s", got, addr)
	}
	r.cancel()
	if _, err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Fatal("listener still accepts after Run returned")
	}
}

func TestRunContextValuesReachHandlersButNotItsCancellation(t *testing.T) {
	t.Parallel()
	type key struct{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New("test", service.WithListener(ln), service.WithLogger(newLogger(&logBuffer{})),
		service.WithoutDrainDelay(), service.WithShutdown(0, waitFor))
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	var value any
	var ctxErr error
	svc.HandleFunc("GET /ctx", func(w http.ResponseWriter, r *http.Request) {
		value = r.Context().Value(key{})
		close(entered)
		<-release
		ctxErr = r.Context().Err()
	})
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "from main"))
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	reqDone := make(chan struct{})
	go func() {
		defer close(reqDone)
		if resp, err := noKeepAlive().Get("http://" + ln.Addr().String() + "/ctx"); err == nil {
			drain(resp)
		}
	}()
	<-entered
	cancel()
	waitUntil(t, "the service is draining", func() bool { return svc.Health().State() == health.StateDraining })
	close(release)
	<-reqDone
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if value != "from main" || ctxErr != nil {
		t.Fatalf("handler saw value %v and ctx error %v; want \"from main\" and nil", value, ctxErr)
	}
}
