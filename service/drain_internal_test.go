package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/discoverytest"
	"github.com/pier-go/pier/health"
)

// TestDrainServesWhileUnready holds a Service in its drain delay (the drain
// timer is the test's) and looks at it from outside: it leaves the registry,
// readiness is 503, liveness 200, and new requests are still served, with
// keep-alives off so callers move on.
func TestDrainServesWhileUnready(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := discovery.NewMemory()
	svc, err := New("test", WithListener(ln), WithLogger(slog.New(slog.DiscardHandler)),
		WithShutdown(time.Hour, 10*time.Second), WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	svc.HandleFunc("GET /work", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "done") })
	drainStarted := make(chan time.Duration, 1)
	endDrain := make(chan time.Time)
	svc.after = func(d time.Duration) <-chan time.Time {
		drainStarted <- d
		return endDrain
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

	url := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}
	getStatus := func(path string) (int, bool) {
		t.Helper()
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Close // the client turns "Connection: close" into Close
	}
	if code, _ := getStatus(ReadyPath); code != http.StatusOK {
		t.Fatalf("ready while serving = %d, want 200", code)
	}
	discoverytest.WaitResolve(t, reg, "test", "the instance is registered", func(set []discovery.Instance, _ error) bool {
		return len(set) == 1
	})

	cancel()
	select {
	case d := <-drainStarted:
		if d != time.Hour {
			t.Fatalf("drain delay = %v, want the configured 1h", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not start")
	}
	if got := svc.Health().State(); got != health.StateDraining {
		t.Fatalf("state during drain = %v, want draining", got)
	}
	// Deregistered during the drain, so while the listener still serves.
	discoverytest.WaitResolve(t, reg, "test", "the instance is deregistered during the drain",
		func(_ []discovery.Instance, err error) bool { return errors.Is(err, discovery.ErrNoInstances) })
	if code, _ := getStatus(ReadyPath); code != http.StatusServiceUnavailable {
		t.Fatalf("ready during drain = %d, want 503", code)
	}
	if code, _ := getStatus(LivePath); code != http.StatusOK {
		t.Fatalf("live during drain = %d, want 200", code)
	}
	code, closing := getStatus("/work")
	if code != http.StatusOK || !closing {
		t.Fatalf("request during drain = %d with Connection: close %t, want 200 and close", code, closing)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before the drain delay ended", err)
	default:
	}

	close(endDrain)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
	client.CloseIdleConnections()
}

func TestRequestIDKeyIsCanonical(t *testing.T) {
	if got := http.CanonicalHeaderKey(RequestIDHeader); got != requestIDKey {
		t.Fatalf("requestIDKey = %q, want %q", requestIDKey, got)
	}
}
