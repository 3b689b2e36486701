package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"go.opentelemetry.io/otel/attribute"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/idempotency"
	"github.com/pier-go/pier/resilience"
)

// instance is a real HTTP server on loopback whose behaviour a test can change
// while it runs, and which counts the requests it receives.
type instance struct {
	addr    string
	srv     *http.Server
	hits    atomic.Int64
	handler atomic.Pointer[http.HandlerFunc]
}

func (in *instance) set(h http.HandlerFunc) { in.handler.Store(&h) }

// fleet is n instances of the service "users" in a memory registry.
type fleet struct {
	reg *discovery.Memory
	ins []*instance
}

func newFleet(t *testing.T, n int, h http.HandlerFunc) *fleet {
	t.Helper()
	f := &fleet{reg: discovery.NewMemory()}
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		in := &instance{addr: ln.Addr().String()}
		in.set(h)
		in.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			in.hits.Add(1)
			(*in.handler.Load())(w, r)
		}), ReadHeaderTimeout: waitFor}
		go func() { _ = in.srv.Serve(ln) }()
		t.Cleanup(func() { _ = in.srv.Close() })
		if err := f.reg.Register(context.Background(), discovery.Instance{
			ID: fmt.Sprintf("users-%d", i), Service: "users", Addr: in.addr}); err != nil {
			t.Fatal(err)
		}
		f.ins = append(f.ins, in)
	}
	return f
}

func (f *fleet) client(t *testing.T, opts ...discovery.ClientOption) *http.Client {
	t.Helper()
	c := discovery.NewClient(f.reg, opts...)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

const waitFor = 10 * time.Second

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { http.Error(w, http.StatusText(code), code) }
}

// work holds a handler for d without sleeping the test: the server's side of
// a request that takes time.
func work(d time.Duration) {
	t := time.NewTimer(d)
	<-t.C
}

// call sends one request and returns its status, or the error.
func call(c *http.Client, method, url string, header http.Header) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader("payload"))
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// run sends n requests from workers goroutines and returns how many did not
// get a 200.
func run(c *http.Client, n, workers int, method string, header func(i int) http.Header) (failed int64) {
	var next atomic.Int64
	var bad atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				var h http.Header
				if header != nil {
					h = header(int(i))
				}
				if code, err := call(c, method, "http://users/work", h); err != nil || code != http.StatusOK {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return bad.Load()
}

func TestAlwaysFailingInstanceIsEjected(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3, ok)
	bad := f.ins[1]
	bad.set(status(http.StatusServiceUnavailable))
	// Round robin sends the bad instance its turn until ejection takes it out:
	// the mechanism under test. (P2C avoids it by load without ejecting it.)
	c := f.client(t, discovery.WithBalancer(discovery.RoundRobin))

	if failed := run(c, 500, 1, "GET", nil); failed != 0 {
		t.Fatalf("%d of 500 GETs failed, want 0", failed)
	}
	before := bad.hits.Load()
	if failed := run(c, 500, 1, "GET", nil); failed != 0 {
		t.Fatalf("%d of the next 500 GETs failed, want 0", failed)
	}
	after := bad.hits.Load()
	t.Logf("the failing instance got %d of the first 500 requests' attempts and %d of the next 500", before, after-before)
	if before < 5 || before > 10 {
		t.Errorf("the failing instance got %d attempts before ejection, want 5 (to eject it) to 10", before)
	}
	if after != before {
		t.Errorf("the failing instance got %d attempts after its ejection, want none within the ejection time", after-before)
	}
}

func TestP2CKeepsAFailingInstanceAlmostIdle(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3, ok)
	f.ins[1].set(status(http.StatusServiceUnavailable))
	c := f.client(t)
	if failed := run(c, 1000, 4, "GET", nil); failed != 0 {
		t.Fatalf("%d of 1000 GETs failed, want 0", failed)
	}
	if got := f.ins[1].hits.Load(); got > 20 {
		t.Fatalf("P2C sent the failing instance %d attempts, want a handful", got)
	}
	t.Logf("P2C sent the failing instance %d of 1000 requests' attempts", f.ins[1].hits.Load())
}

func TestInstanceClosedMidRun(t *testing.T) {
	t.Parallel()
	store, err := idempotency.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := idempotency.Middleware(store)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	runs := map[string]int{} // handler runs per Idempotency-Key
	handler := func(w http.ResponseWriter, r *http.Request) {
		work(time.Millisecond)
		if key := r.Header.Get(idempotency.Header); key != "" {
			mu.Lock()
			runs[key]++
			mu.Unlock()
		}
		_, _ = io.WriteString(w, "done")
	}
	// Every instance deduplicates through one shared store, as instances share
	// Redis in production.
	dedup := keys(http.HandlerFunc(handler))
	f := newFleet(t, 3, dedup.ServeHTTP)
	c := f.client(t)
	victim := f.ins[2]

	closeAfter := func(n int64) {
		for victim.hits.Load() < n {
			work(time.Millisecond)
		}
		_ = victim.srv.Close() // a crash: it stays in the registry
	}
	var wg sync.WaitGroup
	var getFailed, postFailed, keyedFailed int64
	wg.Go(func() { closeAfter(30) })
	wg.Go(func() { getFailed = run(c, 300, 4, "GET", nil) })
	wg.Go(func() { postFailed = run(c, 300, 4, "POST", nil) })
	wg.Go(func() {
		keyedFailed = run(c, 300, 4, "POST", func(i int) http.Header {
			return http.Header{"Idempotency-Key": {fmt.Sprintf("order-%d", i)}}
		})
	})
	wg.Wait()

	if getFailed != 0 {
		t.Errorf("%d of 300 GETs failed, want 0", getFailed)
	}
	if keyedFailed != 0 {
		t.Errorf("%d of 300 POSTs with an Idempotency-Key failed, want 0", keyedFailed)
	}
	// A POST without a key is sent once, so the ones in flight on the instance
	// when it went down fail; one that never left the client (connection
	// refused) is retried, since it cannot have run.
	if postFailed > 4 {
		t.Errorf("%d POSTs without a key failed, want at most the 4 in flight", postFailed)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 300 {
		t.Errorf("%d keys reached a handler, want 300", len(runs))
	}
	for key, n := range runs {
		if n != 1 {
			t.Errorf("the handler ran %d times for %s, want once", n, key)
		}
	}
	t.Logf("failed: %d GETs, %d POSTs without a key, %d with one", getFailed, postFailed, keyedFailed)
}

// P2C failed to beat round robin clearly on a busy machine (0.17 of requests
// to the slow instance against 0.33): the slow instance took 20 ms against
// 1 ms, and on two busy cores a fast instance's stalls reach that; peak EWMA
// keeps such a peak for seconds (tau 10 s), and four callers multiplied it by
// the requests in flight. Now the slow instance waits 500 ms, past the stalls
// of a loopback answer even beside busy loops, the callers go one at a time
// (the in-flight factor is TestP2CPrefersTheLessLoaded's), and the test does
// not run in parallel with the others, so that it measures the balancer
// rather than the machine. Round robin gives the slow instance a third of
// the requests by construction (TestSpread): it is not run here, where it
// would wait 500 ms fifteen times.
func TestP2CAvoidsASlowInstance(t *testing.T) {
	const requests = 45
	f := newFleet(t, 3, ok)
	slow := f.ins[0]
	slow.set(func(w http.ResponseWriter, r *http.Request) {
		work(500 * time.Millisecond)
		ok(w, r)
	})
	if failed := run(f.client(t), requests, 1, "GET", nil); failed != 0 {
		t.Fatalf("%d requests failed", failed)
	}
	var total int64
	for _, in := range f.ins {
		total += in.hits.Load()
	}
	share := float64(slow.hits.Load()) / float64(total)
	t.Logf("P2C sent the slow instance %d of %d requests (%.2f); round robin sends it a third", slow.hits.Load(), total, share)
	if share >= 1.0/6 {
		t.Fatalf("P2C sent the slow instance %.2f of requests, round robin a third; want far less", share)
	}
}

func TestEveryInstanceFailing(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	f := newFleet(t, 3, status(http.StatusServiceUnavailable))
	c := f.client(t, rec.options(
		discovery.WithRetryBackoff(time.Millisecond, 2*time.Millisecond),
		discovery.WithCircuitBreaker(resilience.NewCircuitBreakerBuilder().WithDelay(200*time.Millisecond)),
	)...)
	const requests = 200
	var opened atomic.Int64
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			_, err := call(c, "GET", "http://users/work", nil)
			if errors.Is(err, circuitbreaker.ErrOpen) {
				opened.Add(1)
			}
		})
	}
	wg.Wait()
	var attempts int64
	for _, in := range f.ins {
		attempts += in.hits.Load()
	}
	ratio := float64(attempts) / requests
	t.Logf("every instance failing: %d attempts for %d requests (%.2f per request); %d requests refused by the open breaker",
		attempts, requests, ratio, opened.Load())
	if ratio > 1.5 {
		t.Errorf("%.2f attempts per request, want the retry budget (20%%) to keep it near 1.2", ratio)
	}
	// The breaker counts requests: those that passed it while it was closed
	// failed, and opened it. (Whether later ones meet it open depends on how
	// the burst is scheduled against its 200 ms open delay: the transition
	// is what is certain.)
	if n, _ := value(t, rec.collect(t), "pier.client.breaker.transitions", users, attribute.String("state", "open")); n == 0 {
		t.Error("the breaker never opened")
	}

	// The service recovers: the breaker lets trial requests through (half-open)
	// and closes.
	for _, in := range f.ins {
		in.set(ok)
	}
	deadline := time.Now().Add(waitFor)
	for {
		code, err := call(c, "GET", "http://users/work", nil)
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after the service recovered: %d, %v", code, err)
		}
		work(10 * time.Millisecond)
	}
	if failed := run(c, 50, 2, "GET", nil); failed != 0 {
		t.Fatalf("%d of 50 requests failed after the breaker closed", failed)
	}
}

func TestClientErrorsAndCancellationsTripNothing(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := newFleet(t, 2, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/hang":
			select { // until the caller gives up
			case <-r.Context().Done():
			case <-release:
			}
		default:
			ok(w, r)
		}
	})
	defer close(release)
	c := f.client(t, discovery.WithBalancer(discovery.RoundRobin),
		discovery.WithCircuitBreaker(resilience.NewCircuitBreakerBuilder().WithFailureRateThreshold(0.5, 5, time.Minute)))

	for range 50 {
		if code, err := call(c, "GET", "http://users/missing", nil); err != nil || code != http.StatusNotFound {
			t.Fatalf("GET /missing = %d, %v", code, err)
		}
	}
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://users/hang", nil)
		done := make(chan error, 1)
		go func() {
			resp, err := c.Do(req)
			if err == nil {
				_ = resp.Body.Close()
			}
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled request returned %v", err)
		}
	}
	// Neither instance was ejected, and the breaker is closed: requests go
	// through, to both instances in turn.
	before := [2]int64{f.ins[0].hits.Load(), f.ins[1].hits.Load()}
	if failed := run(c, 20, 1, "GET", nil); failed != 0 {
		t.Fatalf("%d of 20 requests failed after 4xx answers and cancellations", failed)
	}
	for i, in := range f.ins {
		if got := in.hits.Load() - before[i]; got != 10 {
			t.Errorf("instance %d got %d of 20 requests, want 10: it was ejected", i, got)
		}
	}
}

func TestWithIdempotencyKeysMakesPOSTsRetryable(t *testing.T) {
	t.Parallel()
	store, err := idempotency.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	dedup, err := idempotency.Middleware(store)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	keys := map[string]int{}
	var failFirst atomic.Bool
	failFirst.Store(true)
	f := newFleet(t, 2, dedup(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys[r.Header.Get(idempotency.Header)]++
		mu.Unlock()
		if failFirst.CompareAndSwap(true, false) {
			http.Error(w, "overloaded", http.StatusServiceUnavailable) // not stored: the retry runs again
			return
		}
		_, _ = io.WriteString(w, "created")
	})).ServeHTTP)

	plain := f.client(t)
	if code, err := call(plain, "POST", "http://users/orders", nil); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("POST without a key = %d, %v; want the 503, not retried", code, err)
	}
	keyed := f.client(t, discovery.WithIdempotencyKeys())
	failFirst.Store(true)
	if code, err := call(keyed, "POST", "http://users/orders", nil); err != nil || code != http.StatusOK {
		t.Fatalf("POST with a generated key = %d, %v; want 200 after a retry", code, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := keys[""]; n != 1 {
		t.Errorf("the POST without a key reached the handler %d times, want 1", n)
	}
	generated := 0
	for k, n := range keys {
		if k != "" {
			generated++
			if n != 2 {
				t.Errorf("key %q reached the handler %d times, want 2 (the 503 and its retry)", k, n)
			}
		}
	}
	if generated != 1 {
		t.Errorf("%d generated keys, want 1 kept across the retry", generated)
	}
}
