package discovery

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Balancer is how the client chooses an instance for each attempt, among those
// not ejected and not already tried by the same request. The zero value is
// [P2C], the default.
//
// The set is closed: a Balancer is one of the constants below. Choosing then
// allocates nothing and takes no lock, which an open interface over a list of
// candidates could not promise on every request.
type Balancer int

const (
	// P2C picks two instances at random and sends to the one with the lower
	// load: its peak-EWMA latency times the requests it would have in flight
	// (power of two choices, as Finagle's and go-zero's balancers do). A slow
	// or failing instance is avoided at once and readmitted gradually, without
	// the herding of always choosing the least loaded one.
	P2C Balancer = iota
	// RoundRobin takes the instances in turn.
	RoundRobin
	// Random picks an instance at random.
	Random
)

// String returns "p2c", "round-robin" or "random".
func (b Balancer) String() string {
	switch b {
	case P2C:
		return "p2c"
	case RoundRobin:
		return "round-robin"
	case Random:
		return "random"
	}
	return "Balancer(?)"
}

// tried holds the endpoints a request has sent to, so that its retries go
// elsewhere, and what its attempts need to know of each other. Requests make
// a handful of attempts: a fixed array. Hedged attempts run at once, hence
// the lock.
type tried struct {
	mu       sync.Mutex
	n        int
	eps      [8]*endpoint
	attempts int // endpoints picked, for pier.attempt
	ended    int // attempts that have returned

	// gone is closed when the caller's context ends (its Done channel; nil when
	// it never ends), so that an attempt canceled while the caller still waits
	// is known to have been cut by a policy inside the client.
	gone <-chan struct{}

	// replay is the outcome of the request's first attempt, made before its
	// policies ran, for the picker to return as their first attempt.
	replay *outcome
}

// pick chooses an endpoint with b as [Balancer.pick] does and records it as
// tried, in one step, so that concurrent attempts choose apart. It returns
// the attempt's number within the request, from 1, and the number of the
// request's attempts that had ended, for [tried.end].
func (t *tried) pick(b Balancer, eps []*endpoint, now time.Time, counter *atomic.Uint64) (*endpoint, int, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := b.pick(eps, t, now, counter)
	if e == nil {
		return nil, t.attempts, t.ended
	}
	t.add(e)
	t.attempts++
	return e, t.attempts, t.ended
}

// end records that an attempt picked when ended attempts had ended has
// returned, and reports whether another attempt of the request returned in
// the meantime: a hedge that answered first, so that this one was canceled
// for losing, not for being slow.
func (t *tried) end(ended int) (overtaken bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	overtaken = t.ended > ended
	t.ended++
	return overtaken
}

// callerGone reports whether the caller's context has ended.
func (t *tried) callerGone() bool {
	select {
	case <-t.gone:
		return true
	default:
		return false
	}
}

// add records e; t.mu must be held, or t not shared yet.
func (t *tried) add(e *endpoint) {
	if t.n < len(t.eps) {
		t.eps[t.n] = e
		t.n++
	}
}

// has reports whether e was tried; t.mu must be held, or t not shared yet.
func (t *tried) has(e *endpoint) bool {
	for _, x := range t.eps[:t.n] {
		if x == e {
			return true
		}
	}
	return false
}

// pick chooses among eps with b. It prefers endpoints neither ejected nor
// tried; when there are none it ignores ejection (better a suspect instance
// than none, as Envoy's panic threshold does), then having been tried, still
// preferring an endpoint not ejected, so that a request's last attempt goes
// back to the instance that works rather than to the one ejected.
// counter is the service's round-robin position.
func (b Balancer) pick(eps []*endpoint, t *tried, now time.Time, counter *atomic.Uint64) *endpoint {
	if len(eps) == 0 {
		return nil
	}
	for _, eligible := range [...]func(*endpoint) bool{
		func(e *endpoint) bool { return !t.has(e) && !e.ejected(now) },
		func(e *endpoint) bool { return !t.has(e) },
		func(e *endpoint) bool { return !e.ejected(now) },
		func(*endpoint) bool { return true },
	} {
		n := 0
		for _, e := range eps {
			if eligible(e) {
				n++
			}
		}
		if n == 0 {
			continue
		}
		switch b {
		case RoundRobin:
			start := int(counter.Add(1) % uint64(len(eps)))
			for i := range eps {
				if e := eps[(start+i)%len(eps)]; eligible(e) {
					return e
				}
			}
		case Random:
			return nth(eps, eligible, rand.N(n))
		default: // P2C
			a := nth(eps, eligible, rand.N(n))
			if n == 1 {
				return a
			}
			i := rand.N(n - 1)
			c := nth(eps, eligible, i)
			if c == a { // the second draw skips the first choice
				c = nth(eps, eligible, n-1)
			}
			if c.load() < a.load() {
				return c
			}
			return a
		}
	}
	return nil
}

// nth returns the i-th endpoint of eps for which eligible holds.
func nth(eps []*endpoint, eligible func(*endpoint) bool, i int) *endpoint {
	for _, e := range eps {
		if eligible(e) {
			if i == 0 {
				return e
			}
			i--
		}
	}
	return nil
}
