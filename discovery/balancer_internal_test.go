package discovery

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pier-go/pier/idempotency"
)

func endpoints(n int) []*endpoint {
	eps := make([]*endpoint, n)
	for i := range eps {
		eps[i] = &endpoint{addr: fmt.Sprintf("10.0.0.%d:80", i+1)}
	}
	return eps
}

func TestP2CPrefersTheLessLoaded(t *testing.T) {
	now := time.Unix(1000, 0)
	eps := endpoints(2)
	eps[0].observe(now, 200*time.Millisecond, false) // slow
	eps[1].observe(now, 2*time.Millisecond, false)
	var rr atomic.Uint64
	for range 100 { // with two candidates P2C always compares both
		if got := P2C.pick(eps, &tried{}, now, &rr); got != eps[1] {
			t.Fatalf("P2C picked %s, want the fast instance", got.addr)
		}
	}
	// Load is latency times in-flight requests: enough requests in flight on the
	// fast one make the slow one the better choice.
	eps[1].inflight.Store(200)
	if got := P2C.pick(eps, &tried{}, now, &rr); got != eps[0] {
		t.Fatalf("P2C picked %s, want the idle one", got.addr)
	}
}

func TestPickSkipsTriedAndEjected(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, b := range []Balancer{P2C, RoundRobin, Random} {
		t.Run(b.String(), func(t *testing.T) {
			eps := endpoints(3)
			var rr atomic.Uint64
			var tr tried
			tr.add(eps[0])
			eps[1].until.Store(now.Add(time.Minute).UnixNano()) // ejected
			for range 50 {
				if got := b.pick(eps, &tr, now, &rr); got != eps[2] {
					t.Fatalf("picked %s, want the only untried, unejected instance", got.addr)
				}
			}
			// Every instance tried or ejected: an ejected one beats none.
			tr.add(eps[2])
			if got := b.pick(eps, &tr, now, &rr); got != eps[1] {
				t.Fatalf("picked %v, want the ejected but untried instance", got)
			}
			// Every instance tried: one of them again, not the ejected one.
			tr.add(eps[1])
			for range 50 {
				if got := b.pick(eps, &tr, now, &rr); got == nil || got == eps[1] {
					t.Fatalf("picked %v with every instance tried, want one not ejected", got)
				}
			}
			// Every instance tried and ejected: one of them all the same.
			for _, e := range eps {
				e.until.Store(now.Add(time.Minute).UnixNano())
			}
			if got := b.pick(eps, &tr, now, &rr); got == nil {
				t.Fatal("picked nothing with instances left")
			}
		})
	}
}

func TestSpread(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, b := range []Balancer{P2C, RoundRobin, Random} {
		t.Run(b.String(), func(t *testing.T) {
			eps := endpoints(3)
			var rr atomic.Uint64
			counts := map[*endpoint]int{}
			const n = 3000
			for range n {
				counts[b.pick(eps, &tried{}, now, &rr)]++
			}
			for _, e := range eps { // equal instances get about a third each
				if c := counts[e]; c < n/5 || c > n/2 {
					t.Fatalf("%s got %d of %d picks: %v", e.addr, c, n, counts)
				}
			}
		})
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	now := time.Unix(1000, 0)
	eps := endpoints(5)
	var rr atomic.Uint64
	for _, b := range []Balancer{P2C, RoundRobin, Random} {
		if a := testing.AllocsPerRun(100, func() {
			var tr tried
			tr.add(b.pick(eps, &tr, now, &rr))
			b.pick(eps, &tr, now, &rr)
		}); a != 0 {
			t.Errorf("%s: %v allocations per pick, want 0", b, a)
		}
	}
}

func TestPeakEWMA(t *testing.T) {
	now := time.Unix(1000, 0)
	e := &endpoint{}
	if e.load() != 0 {
		t.Fatalf("an unmeasured endpoint costs %v, want 0 (tried at once)", e.load())
	}
	e.observe(now, 10*time.Millisecond, false)
	e.observe(now.Add(time.Millisecond), 100*time.Millisecond, false)
	if got := time.Duration(e.load()); got != 100*time.Millisecond {
		t.Fatalf("after a slow sample the cost is %v, want the peak, 100ms", got)
	}
	// Fast samples pull it down gradually: after one tau, about 63% of the way.
	e.observe(now.Add(time.Millisecond+ewmaTau), 10*time.Millisecond, false)
	if got := time.Duration(e.load()); got < 40*time.Millisecond || got > 50*time.Millisecond {
		t.Fatalf("one tau later the cost is %v, want about 43ms", got)
	}
	// A failure counts as at least the penalty, so a fast failure is not fast.
	e.observe(now.Add(2*ewmaTau), time.Millisecond, true)
	if got := time.Duration(e.load()); got < failurePenalty {
		t.Fatalf("after a failure the cost is %v, want at least %v", got, failurePenalty)
	}
}

func TestEjection(t *testing.T) {
	cfg := Ejection{}.withDefaults()
	now := time.Unix(1000, 0)
	e := &endpoint{}
	yes := func(eject func()) bool { eject(); return true }
	for i := range 4 {
		if e.record(now, true, cfg, yes) {
			t.Fatalf("ejected after %d failures, want 5", i+1)
		}
	}
	e.record(now, false, cfg, yes) // a success resets the count
	for range 4 {
		e.record(now, true, cfg, yes)
	}
	if e.ejected(now) {
		t.Fatal("ejected after a success broke the run")
	}
	if !e.record(now, true, cfg, yes) || !e.ejected(now) {
		t.Fatal("not ejected after 5 failures in a row")
	}
	if e.ejected(now.Add(cfg.Base)) {
		t.Fatal("still ejected after the base ejection time")
	}
	// Ejected again at once: twice as long.
	back := now.Add(cfg.Base)
	for range 5 {
		e.record(back, true, cfg, yes)
	}
	if !e.ejected(back.Add(2*cfg.Base-time.Second)) || e.ejected(back.Add(2*cfg.Base)) {
		t.Fatal("a second ejection did not last twice the base time")
	}
	// Not allowed (the service's cap is reached): never ejected.
	f := &endpoint{}
	for range 20 {
		if f.record(now, true, cfg, func(func()) bool { return false }) {
			t.Fatal("ejected past the service's cap")
		}
	}
	// Disabled.
	g := &endpoint{}
	for range 20 {
		g.record(now, true, Ejection{Consecutive: -1}, yes)
	}
	if g.ejected(now) {
		t.Fatal("ejected with ejection disabled")
	}
}

func TestEjectionCap(t *testing.T) {
	now := time.Unix(1000, 0)
	cfg := Ejection{}.withDefaults()
	for _, tt := range []struct{ n, maxEjected int }{{1, 1}, {2, 1}, {3, 1}, {4, 2}, {10, 5}} {
		s := &serviceState{}
		eps := endpoints(tt.n)
		s.set.Store(&endpointSet{eps: eps})
		ejected := 0
		for _, e := range eps {
			for range cfg.Consecutive {
				if e.record(now, true, cfg, func(eject func()) bool { return s.tryEject(now, cfg, eject) }) {
					ejected++
				}
			}
		}
		if ejected != tt.maxEjected {
			t.Errorf("%d instances all failing: %d ejected, want %d (50%%, at least one)", tt.n, ejected, tt.maxEjected)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	now := time.Unix(1000, 0)
	for _, n := range []int{3, 20} {
		eps := endpoints(n)
		for i, e := range eps {
			e.observe(now, time.Duration(i+1)*time.Millisecond, false)
		}
		for _, bal := range []Balancer{P2C, RoundRobin, Random} {
			b.Run(fmt.Sprintf("%s/%d", bal, n), func(b *testing.B) {
				var rr atomic.Uint64
				b.ReportAllocs()
				for b.Loop() {
					var tr tried
					_ = bal.pick(eps, &tr, now, &rr)
				}
			})
		}
	}
}

// The cap used to be checked under the failing endpoint's own lock, so
// endpoints failing at the same moment all saw room and more than half were
// ejected.
func TestEjectionCapExceededByEndpointsFailingTogether(t *testing.T) {
	cfg := Ejection{Consecutive: 1}.withDefaults()
	now := time.Unix(1000, 0)
	const rounds, n, perEndpoint = 1000, 10, 8
	for round := range rounds {
		s := &serviceState{}
		eps := endpoints(n)
		s.set.Store(&endpointSet{eps: eps})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, e := range eps {
			for range perEndpoint {
				wg.Go(func() {
					<-start
					e.record(now, true, cfg, func(eject func()) bool { return s.tryEject(now, cfg, eject) })
				})
			}
		}
		close(start)
		wg.Wait()
		if got := s.ejectedAt(now); got > n/2 {
			t.Fatalf("round %d: %d of %d endpoints ejected, want at most %d", round+1, got, n, n/2)
		}
	}
}

// An endpoint never measured cost 0 however many requests waited on it, so
// P2C piled requests onto a new instance that hung before its first answer.
func TestP2CPilesRequestsOntoAnUnmeasuredInstance(t *testing.T) {
	now := time.Unix(1000, 0)
	eps := endpoints(2)
	eps[1].observe(now, 50*time.Millisecond, false) // measured, and slow
	var rr atomic.Uint64
	if got := P2C.pick(eps, &tried{}, now, &rr); got != eps[0] {
		t.Fatalf("P2C picked %s, want the unmeasured, idle instance (tried at once)", got.addr)
	}
	eps[0].inflight.Store(1) // its first request has not answered
	for range 100 {
		if got := P2C.pick(eps, &tried{}, now, &rr); got != eps[1] {
			t.Fatalf("P2C picked %s, an unmeasured instance with a request in flight, want the measured one", got.addr)
		}
	}
}

// An attempt cut before it answered took at least its time: a peak when
// above the average, nothing when below (the answer would have come later).
func TestCutAttemptRaisesButNeverLowersTheCost(t *testing.T) {
	now := time.Unix(1000, 0)
	e := &endpoint{}
	e.observeCut(now, 100*time.Millisecond)
	if got := time.Duration(e.load()); got != 100*time.Millisecond {
		t.Fatalf("after a cut at 100ms an unmeasured endpoint costs %v, want 100ms", got)
	}
	e.observeCut(now.Add(ewmaTau), time.Millisecond)
	if got := time.Duration(e.load()); got != 100*time.Millisecond {
		t.Fatalf("a cut at 1ms moved the cost to %v, want it kept at 100ms", got)
	}
	e.observeCut(now.Add(ewmaTau), 300*time.Millisecond)
	if got := time.Duration(e.load()); got != 300*time.Millisecond {
		t.Fatalf("after a cut at 300ms the cost is %v, want the peak, 300ms", got)
	}
}

// TestIdempotencyKeyHeaderDriftedFromTheMiddlewares: the client writes the
// header name out rather than import the server-side package; it must stay
// the one idempotency.Middleware reads.
func TestIdempotencyKeyHeaderDriftedFromTheMiddlewares(t *testing.T) {
	if idempotencyKey != idempotency.Header {
		t.Fatalf("the client sets %q, the middleware reads %q", idempotencyKey, idempotency.Header)
	}
}
