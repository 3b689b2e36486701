package discovery

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

// serviceState is what the client keeps per service: its executors, its
// round-robin position, its endpoints and its metric attributes.
type serviceState struct {
	name      string
	transport http.RoundTripper // resilience.Transport over the service's picker
	picker    *picker
	direct    bool                                          // no policy but the retry policy: first attempts skip the chain
	budget    executionCounter                              // the retry policy's budget; nil without retries
	breaker   circuitbreaker.CircuitBreaker[*http.Response] // nil without one
	tel       serviceTelemetry
	rr        atomic.Uint64

	mu        sync.Mutex // serialises rebuilds of set
	set       atomic.Pointer[endpointSet]
	endpoints map[string]*endpoint // by address, kept across instance-set changes

	// ejectMu makes counting the ejected endpoints and ejecting one a single
	// step (tryEject), so that endpoints failing together cannot all see room
	// under the cap. Ejections are rare, so a mutex costs nothing that matters.
	ejectMu sync.Mutex
}

// endpointSet is the endpoints of one instance set, as Resolve returned it.
type endpointSet struct {
	from []Instance
	eps  []*endpoint
}

// endpointsOf returns the endpoints of instances, reusing the last answer when
// the resolver returned the same slice, as it does until the set changes.
func (s *serviceState) endpointsOf(instances []Instance) []*endpoint {
	if set := s.set.Load(); set != nil && sameSlice(set.from, instances) {
		return set.eps
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if set := s.set.Load(); set != nil && sameSlice(set.from, instances) {
		return set.eps
	}
	eps := make([]*endpoint, 0, len(instances))
	keep := make(map[string]*endpoint, len(instances))
	for _, in := range instances {
		e := s.endpoints[in.Addr]
		if e == nil {
			e = newEndpoint(in.Addr)
		}
		if keep[in.Addr] == nil {
			keep[in.Addr] = e
			eps = append(eps, e)
		}
	}
	s.endpoints = keep // instances that left take their history with them
	s.set.Store(&endpointSet{from: instances, eps: eps})
	return eps
}

func sameSlice(a, b []Instance) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// tryEject calls eject, which ejects one of s's endpoints, when one more may be
// ejected at now under cfg's cap, and reports whether it did. The count and the
// ejection are one step: no other endpoint of s is ejected in between. It is
// the gate of [endpoint.record]; it takes no endpoint's lock.
func (s *serviceState) tryEject(now time.Time, cfg Ejection, eject func()) bool {
	s.ejectMu.Lock()
	defer s.ejectMu.Unlock()
	if !s.mayEject(now, cfg) {
		return false
	}
	eject()
	return true
}

// mayEject reports whether one more of s's endpoints may be ejected at now.
func (s *serviceState) mayEject(now time.Time, cfg Ejection) bool {
	set := s.set.Load()
	if set == nil {
		return false
	}
	return s.ejectedAt(now) < max(1, len(set.eps)*cfg.MaxPercent/100)
}

// ejectedAt returns how many of s's endpoints are ejected at now.
func (s *serviceState) ejectedAt(now time.Time) int {
	set := s.set.Load()
	if set == nil {
		return 0
	}
	ejected := 0
	for _, e := range set.eps {
		if e.ejected(now) {
			ejected++
		}
	}
	return ejected
}
