package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/pier-go/pier/resilience"
)

func TestBreakerOpensRejectsAndCloses(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	failing.Store(true)
	var attempts atomic.Int64
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	events := make(chan circuitbreaker.StateChangedEvent, 16)
	cb := resilience.NewCircuitBreakerBuilder().
		WithFailureRateThreshold(0.5, 4, time.Minute).
		WithDelay(20 * time.Millisecond).
		WithSuccessThreshold(2).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) { events <- e }).
		Build()
	client := &http.Client{Transport: resilience.Transport(newTransport(t), cb)}
	t.Cleanup(client.CloseIdleConnections)

	expectChange := func(from, to circuitbreaker.State) {
		t.Helper()
		e := recv(t, events, "a state change")
		if e.OldState != from || e.NewState != to {
			t.Fatalf("state change %v -> %v, want %v -> %v", e.OldState, e.NewState, from, to)
		}
	}
	for range 4 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
	}
	expectChange(circuitbreaker.ClosedState, circuitbreaker.OpenState)

	_, err := client.Get(srv.URL)
	var ue *url.Error
	if !errors.As(err, &ue) || ue.Err != circuitbreaker.ErrOpen {
		t.Fatalf("err = %v, want circuitbreaker.ErrOpen unchanged", err)
	}
	if attempts.Load() != 4 {
		t.Fatalf("%d attempts reached the server, want 4: the open breaker must not call it", attempts.Load())
	}

	// Wait for the breaker's own remaining delay, not a guess.
	for range 100 {
		d := cb.RemainingDelay()
		if d <= 0 {
			break
		}
		<-time.After(d)
	}
	failing.Store(false)
	for i := range 2 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("trial %d: %v", i+1, err)
		}
		if code, _ := readAll(t, resp); code != 200 {
			t.Fatalf("trial %d: status %d", i+1, code)
		}
		if i == 0 {
			expectChange(circuitbreaker.OpenState, circuitbreaker.HalfOpenState)
		}
	}
	expectChange(circuitbreaker.HalfOpenState, circuitbreaker.ClosedState)
	if !cb.IsClosed() {
		t.Fatalf("breaker %v, want closed", cb.State())
	}
}

func TestBreakerReopensOnHalfOpenFailure(t *testing.T) {
	t.Parallel()
	h, _ := statusSequence(503)
	srv := newServer(t, h)
	cb := resilience.NewCircuitBreakerBuilder().WithDelay(time.Millisecond).Build()
	cb.Open()
	for cb.RemainingDelay() > 0 {
		<-time.After(cb.RemainingDelay())
	}
	rt := resilience.Transport(newTransport(t), cb)
	if code, _ := get(t, rt, srv.URL); code != 503 {
		t.Fatalf("trial status %d, want 503", code)
	}
	if !cb.IsOpen() {
		t.Fatalf("breaker %v after a failed trial, want open", cb.State())
	}
}

// TestBreakerIgnoresClientErrorsAndCancellation checks that 4xx, 500 and the
// caller's own cancellation and deadline never count as failures.
func TestBreakerIgnoresClientErrorsAndCancellation(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 64)
	mux := http.NewServeMux()
	for _, code := range []int{400, 404, 409, 422, 500} {
		mux.HandleFunc(fmt.Sprintf("/%d", code), func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
	}
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	srv := newServer(t, mux)
	cb := resilience.NewCircuitBreakerBuilder().WithFailureRateThreshold(0.5, 4, time.Minute).Build()
	rt := resilience.Transport(newTransport(t), fastRetry().Build(), cb)

	for _, code := range []int{400, 404, 409, 422, 500} {
		for range 5 {
			if got, _ := get(t, rt, fmt.Sprintf("%s/%d", srv.URL, code)); got != code {
				t.Fatalf("status %d, want %d", got, code)
			}
		}
	}
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/hang", nil)
		errc := make(chan error, 1)
		go func() { _, err := rt.RoundTrip(req); errc <- err }()
		recv(t, arrived, "the request")
		cancel()
		if err := recv(t, errc, "the call"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	}
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/hang", nil)
		_, err := rt.RoundTrip(req)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	}
	if !cb.IsClosed() || cb.Metrics().Failures() != 0 {
		t.Fatalf("breaker %v with %d failures of %d, want closed with none",
			cb.State(), cb.Metrics().Failures(), cb.Metrics().Executions())
	}
}
