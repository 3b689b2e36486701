package discovery_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/internal/metrictest"
	"github.com/pier-go/pier/resilience"
)

// hang is the handler of an instance that accepts connections and never
// answers: it waits until the caller gives up or the test ends, which closes
// release.
func hang(release <-chan struct{}) http.HandlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// hungFleet is n instances of "users" of which the one returned hangs; it is
// released when the test ends.
func hungFleet(t *testing.T, n int) (*fleet, *instance) {
	t.Helper()
	f := newFleet(t, n, ok)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the servers close: cleanups run last-in first-out
	f.ins[0].set(hang(release))
	return f, f.ins[0]
}

// callWithin sends a GET whose context ends after d and returns its status,
// or the error.
func callWithin(c *http.Client, d time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://users/work", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// A hung instance used to keep its share of traffic: an attempt cut by the
// caller's deadline recorded no latency, so the instance kept the cost of one
// never measured, 0, and P2C kept choosing it: 27 of 40 requests failed.
//
// Not parallel: beside other tests on a busy machine a healthy instance's
// answer can outlast the 100 ms deadline, and its cut attempt then costs as
// much as the hung instance's; a few such stalls are allowed for.
func TestHungInstanceKeepsItsShareOfTraffic(t *testing.T) {
	f, hung := hungFleet(t, 3)
	c := f.client(t)
	const requests = 40
	failed := 0
	for range requests {
		if code, err := callWithin(c, 100*time.Millisecond); err != nil || code != http.StatusOK {
			failed++
		}
	}
	t.Logf("one of 3 instances hung, 100 ms deadlines: %d of %d requests failed; the hung instance got %d attempts",
		failed, requests, hung.hits.Load())
	if failed > 4 {
		t.Errorf("%d of %d requests failed, want at most 4: the hung instance is avoided once it has cost one", failed, requests)
	}
	if n := hung.hits.Load(); n > 3 {
		t.Errorf("the hung instance got %d attempts, want at most 3", n)
	}
}

// With an attempt timeout, a hung instance used to open the whole service's
// breaker: the timed-out attempt reached the picker as a plain
// context.Canceled, so it was neither a failure for ejection nor a latency
// sample; P2C chose the never-measured instance first on every request, and
// the breaker, counting attempts, saw half of them fail.
//
// Not parallel, and the connections to the healthy instance are made before,
// by another client on the same transport: a healthy attempt that outlasts
// 50 ms on a busy machine is a timeout too.
func TestHungInstanceOpensTheServiceBreaker(t *testing.T) {
	f, hung := hungFleet(t, 2)
	transport := &http.Transport{MaxIdleConnsPerHost: 8}
	t.Cleanup(transport.CloseIdleConnections)
	hungIn := discovery.Instance{ID: "users-0", Service: "users", Addr: hung.addr}
	if err := f.reg.Deregister(context.Background(), hungIn); err != nil {
		t.Fatal(err)
	}
	if failed := run(f.client(t, discovery.WithTransport(transport)), 4, 2, "GET", nil); failed != 0 {
		t.Fatalf("%d of 4 requests to the healthy instance failed", failed)
	}
	if err := f.reg.Register(context.Background(), hungIn); err != nil {
		t.Fatal(err)
	}
	c := f.client(t,
		discovery.WithTransport(transport),
		discovery.WithAttemptTimeout(50*time.Millisecond),
		discovery.WithOutlierEjection(discovery.Ejection{Consecutive: 1}),
		discovery.WithRetryBackoff(time.Millisecond, 2*time.Millisecond))
	const requests, settle = 20, 3
	failed := 0
	for i := range requests {
		code, err := call(c, "GET", "http://users/work", nil)
		if errors.Is(err, circuitbreaker.ErrOpen) {
			t.Fatalf("request %d: the service's breaker is open although one instance serves", i+1)
		}
		if err != nil || code != http.StatusOK {
			failed++
			if i >= settle {
				t.Fatalf("request %d = %d, %v; want 200 after the first %d (a timed-out attempt is retried on the other instance)",
					i+1, code, err, settle)
			}
		}
	}
	got := hung.hits.Load()
	t.Logf("one of 2 instances hung, 50 ms attempt timeout: %d of %d requests failed; the hung instance got %d attempts",
		failed, requests, got)
	// One timeout ejects it (Consecutive: 1); on a busy machine a healthy
	// attempt may outlast 50 ms too, eject the healthy instance for a while
	// and send a retry back to the hung one.
	if got > 3 {
		t.Errorf("the hung instance got %d attempts, want 1 to 3", got)
	}
}

// The breaker counted attempts, so a service whose requests all succeeded
// after a retry could open it: with two of three instances failing and
// ejection off, two attempts in three fail though every request succeeds.
func TestBreakerOpensThoughEveryRequestSucceeds(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3, ok)
	f.ins[0].set(status(http.StatusServiceUnavailable))
	f.ins[1].set(status(http.StatusServiceUnavailable))
	c := f.client(t,
		discovery.WithBalancer(discovery.RoundRobin),
		discovery.WithOutlierEjection(discovery.Ejection{Consecutive: -1}),
		discovery.WithRetryBackoff(time.Millisecond, 2*time.Millisecond),
		discovery.WithCircuitBreaker(resilience.NewCircuitBreakerBuilder().
			WithFailureRateThreshold(0.5, 10, time.Minute).WithDelay(time.Minute)))
	const requests = 40
	for i := range requests {
		code, err := call(c, "GET", "http://users/work", nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("request %d = %d, %v; want 200 (the breaker counts requests, and each succeeded)", i+1, code, err)
		}
	}
	var failures int64
	for _, in := range f.ins[:2] {
		failures += in.hits.Load()
	}
	t.Logf("%d requests, all successful, made %d failed attempts", requests, failures)
	if failures < requests/2 {
		t.Errorf("only %d failed attempts: the test no longer makes most attempts fail", failures)
	}
}

// The ejection cap was checked under the failing instance's own lock, so
// instances failing together all saw room: 10 failing at once ejected 6 where
// the cap is 5.
func TestEjectionCapExceededByConcurrentFailures(t *testing.T) {
	t.Parallel()
	const (
		instances = 10
		perRound  = 4 * instances // requests in flight at once, 4 per instance
		rounds    = 30
	)
	type round struct {
		arrived atomic.Int64
		allIn   chan struct{}
	}
	var current atomic.Pointer[round]
	f := newFleet(t, instances, func(w http.ResponseWriter, r *http.Request) {
		rd := current.Load()
		if rd.arrived.Add(1) == perRound {
			close(rd.allIn)
		}
		select { // every instance fails at once, when all requests are in
		case <-rd.allIn:
		case <-r.Context().Done():
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	worst := 0
	for i := range rounds {
		current.Store(&round{allIn: make(chan struct{})})
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		// A fresh client each round: no ejection yet, and round robin gives
		// every instance 4 of the requests.
		c := discovery.NewClient(f.reg,
			discovery.WithBalancer(discovery.RoundRobin),
			discovery.WithRetries(0),
			discovery.WithoutCircuitBreaker(),
			discovery.WithOutlierEjection(discovery.Ejection{Consecutive: 1}),
			discovery.WithMeterProvider(mp))
		var wg sync.WaitGroup
		for range perRound {
			wg.Go(func() { _, _ = call(c, "GET", "http://users/work", nil) })
		}
		wg.Wait()
		ejected, _ := metrictest.Value(t, reader, "pier.client.ejected", users)
		ejections, _ := metrictest.Value(t, reader, "pier.client.ejections", users)
		c.CloseIdleConnections()
		_ = mp.Shutdown(context.Background())
		worst = max(worst, int(ejected))
		if ejected > instances/2 || ejections > instances/2 {
			t.Fatalf("round %d: %v instances ejected (%v ejections) of %d, want at most %d (50%%)",
				i+1, ejected, ejections, instances, instances/2)
		}
		if ejected == 0 {
			t.Fatalf("round %d: nothing ejected: the test no longer ejects", i+1)
		}
	}
	t.Logf("at most %d of %d instances ejected over %d rounds", worst, instances, rounds)
}

// An attempt canceled because a hedge answered first lost a race: it is no
// timeout, and must not count against its instance as an attempt timeout does.
func TestHedgeLoserIsNotAFailure(t *testing.T) {
	t.Parallel()
	f, hung := hungFleet(t, 2)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	c := f.client(t,
		discovery.WithBalancer(discovery.RoundRobin), // the hung instance goes first every other request
		discovery.WithOutlierEjection(discovery.Ejection{Consecutive: 1}),
		discovery.WithPolicies(resilience.NewHedgeBuilder(20*time.Millisecond).Build()),
		discovery.WithMeterProvider(mp))
	const requests = 6
	if failed := run(c, requests, 1, "GET", nil); failed != 0 {
		t.Fatalf("%d of %d hedged requests failed", failed, requests)
	}
	if hung.hits.Load() < 2 {
		t.Fatalf("the hung instance got %d attempts, want the first of every other request", hung.hits.Load())
	}
	if n, _ := metrictest.Value(t, reader, "pier.client.ejections", users); n != 0 {
		t.Errorf("%v ejections: a hedge's loser counted as a failure of its instance", n)
	}
}

// The breaker records requests itself now, outside the failsafe execution;
// the conditions of its builder must still decide what else is a failure.
func TestBreakerBuilderConditionsStillCount(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2, status(http.StatusInternalServerError))
	c := f.client(t, discovery.WithCircuitBreaker(resilience.NewCircuitBreakerBuilder().
		HandleIf(func(resp *http.Response, _ error) bool {
			return resp != nil && resp.StatusCode == http.StatusInternalServerError
		}).
		WithFailureRateThreshold(0.5, 4, time.Minute).WithDelay(time.Minute)))
	for i := range 10 {
		code, err := call(c, "GET", "http://users/work", nil)
		if errors.Is(err, circuitbreaker.ErrOpen) {
			if i < 4 {
				t.Fatalf("open after %d requests, want at least 4 (the builder's minimum)", i)
			}
			return
		}
		if err != nil || code != http.StatusInternalServerError {
			t.Fatalf("request %d = %d, %v; want the 500", i+1, code, err)
		}
	}
	t.Fatal("10 answers of 500, which the builder's HandleIf calls failures, did not open the breaker")
}
