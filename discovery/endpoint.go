package discovery

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// endpoint is what the client knows of one instance address: its load and
// latency for the balancer, its failures for outlier ejection. It outlives
// changes of the instance set, so an address that stays keeps its history.
type endpoint struct {
	addr     string
	inflight atomic.Int64

	// server.address and server.port of the attempt spans sent here.
	hostAttr, portAttr attribute.KeyValue

	// Peak EWMA of latency (Finagle's PeakEwma): a slower sample replaces the
	// average at once, a faster one pulls it down with a weight that decays with
	// the time since the last sample, so a slow instance is avoided at once and
	// readmitted gradually.
	mu      sync.Mutex
	ewma    float64 // nanoseconds
	stamp   int64   // unix nanoseconds of the last sample, 0 before the first
	cost    atomic.Uint64
	outlier outlier
	// until is when the current ejection ends, in unix nanoseconds: read
	// without e.mu, by the balancer and by other endpoints counting ejections.
	until atomic.Int64
}

// outlier is an endpoint's ejection bookkeeping, guarded by endpoint.mu.
type outlier struct {
	consecutive int       // failures in a row
	ejections   int       // times ejected, for the multiplier; decays while healthy
	lastEnd     time.Time // when the last ejection ended
}

// newEndpoint returns the endpoint of the instance address addr.
func newEndpoint(addr string) *endpoint {
	e := &endpoint{addr: addr}
	e.hostAttr, e.portAttr = addrAttrs(addr)
	return e
}

// ewmaTau is the decay time of the latency average: Finagle's default.
const ewmaTau = 10 * time.Second

// failurePenalty is the latency a failed attempt counts as, so that an instance
// that fails fast does not look like the fastest one.
const failurePenalty = time.Second

// unmeasuredPenalty is the load of an endpoint that has requests in flight
// but has never answered one: Finagle's PeakEwma penalty (2^47 ns, about 39
// hours), so that such an endpoint loses to every measured one until its first
// request ends, instead of costing 0 however many requests queue on it.
const unmeasuredPenalty = float64(math.MaxInt64 >> 16)

// observe records an attempt's latency, or the failure penalty when it failed.
func (e *endpoint) observe(now time.Time, rtt time.Duration, failed bool) {
	sample := float64(rtt)
	if failed {
		sample = max(sample, float64(failurePenalty))
	}
	e.sample(now, sample, false)
}

// observeCut records an attempt that was canceled before it answered (the
// caller's deadline, a hedge that lost): its latency is at least rtt. As a
// peak it raises the average at once, as Finagle's PeakEwma records an
// interrupted request; below the average it says nothing, since the answer
// would have come later still.
func (e *endpoint) observeCut(now time.Time, rtt time.Duration) {
	e.sample(now, float64(rtt), true)
}

// sample adds a latency sample, in nanoseconds; onlyPeak drops it unless it
// raises the average.
func (e *endpoint) sample(now time.Time, sample float64, onlyPeak bool) {
	ns := now.UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.stamp == 0 || sample > e.ewma:
		e.ewma = sample
	case onlyPeak:
		return
	default:
		elapsed := float64(max(ns-e.stamp, 0))
		w := math.Exp(-elapsed / float64(ewmaTau))
		e.ewma = e.ewma*w + sample*(1-w)
	}
	e.stamp = ns
	e.cost.Store(math.Float64bits(e.ewma))
}

// load is the balancer's measure of e: latency times the requests it would
// then have in flight. An endpoint without a sample yet costs nothing while
// idle, so new instances are tried at once, and [unmeasuredPenalty] plus its
// requests in flight while its first requests are out, so that a new instance
// that hangs takes one request rather than every one.
func (e *endpoint) load() float64 {
	cost, inflight := math.Float64frombits(e.cost.Load()), e.inflight.Load()
	if cost == 0 && inflight > 0 {
		return unmeasuredPenalty + float64(inflight)
	}
	return cost * float64(inflight+1)
}

// Defaults of [Ejection], Envoy's outlier detection defaults.
const (
	// DefaultEjectionConsecutive is how many failures in a row eject an
	// instance: 5, Envoy's consecutive_5xx.
	DefaultEjectionConsecutive = 5
	// DefaultEjectionBase is how long a first ejection lasts: 30 s, Envoy's
	// base_ejection_time. The n-th ejection in a row lasts n times as long,
	// up to [MaxEjectionMultiplier] times.
	DefaultEjectionBase = 30 * time.Second
	// DefaultEjectionMaxPercent is the largest share of a service's instances
	// ejected at once: 50, Envoy's max_ejection_percent (Envoy's default is 10;
	// pier's services run a handful of instances, where 10% would eject none).
	DefaultEjectionMaxPercent = 50
	// MaxEjectionMultiplier caps how many times [Ejection.Base] an ejection
	// lasts when an instance is ejected again and again: 10, so that with the
	// default base an instance is retried at least every 5 minutes.
	MaxEjectionMultiplier = 10
)

// Ejection configures outlier ejection, after Envoy's consecutive-failure
// detection. Its zero value is the default. A failure is what
// resilience.IsFailure says it is, plus an attempt canceled by a policy
// inside the client (an attempt timeout) while its request went on.
type Ejection struct {
	// Consecutive is how many failures in a row eject an instance. Default
	// [DefaultEjectionConsecutive]; negative disables ejection.
	Consecutive int
	// Base is how long the first ejection lasts; the n-th in a row lasts n
	// times Base, up to [MaxEjectionMultiplier] times; the multiplier falls
	// back by one for every Base the instance stays healthy. Default
	// [DefaultEjectionBase].
	Base time.Duration
	// MaxPercent caps the share of a service's instances ejected at once
	// (rounded down); at least one instance can always be ejected. The cap is
	// counted and an instance ejected in one step per service, so instances
	// failing together never pass it. Default [DefaultEjectionMaxPercent];
	// values above 100 mean the default.
	MaxPercent int
}

func (c Ejection) withDefaults() Ejection {
	if c.Consecutive == 0 {
		c.Consecutive = DefaultEjectionConsecutive
	}
	if c.Base <= 0 {
		c.Base = DefaultEjectionBase
	}
	if c.MaxPercent <= 0 || c.MaxPercent > 100 {
		c.MaxPercent = DefaultEjectionMaxPercent
	}
	return c
}

// ejected reports whether e is ejected at now.
func (e *endpoint) ejected(now time.Time) bool {
	return now.UnixNano() < e.until.Load()
}

// record counts an attempt's outcome for ejection and reports whether it
// ejected e. When e has failed enough times in a row, gate decides: it must
// count the service's ejected endpoints and call eject, which ejects e, in one
// step that no other endpoint's gate interleaves with (see
// [serviceState.tryEject]), and report whether it did. gate runs under e.mu and
// must not take another endpoint's lock.
func (e *endpoint) record(now time.Time, failed bool, cfg Ejection, gate func(eject func()) bool) bool {
	if cfg.Consecutive < 0 {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	o := &e.outlier
	if !failed {
		o.consecutive = 0
		return false
	}
	o.consecutive++
	if o.consecutive < cfg.Consecutive || e.ejected(now) {
		return false
	}
	return gate(func() {
		// The multiplier falls back by one for every Base the instance has
		// been healthy since its last ejection ended.
		if !o.lastEnd.IsZero() {
			o.ejections -= int(now.Sub(o.lastEnd) / cfg.Base)
			o.ejections = max(o.ejections, 0)
		}
		o.ejections = min(o.ejections+1, MaxEjectionMultiplier)
		o.lastEnd = now.Add(time.Duration(o.ejections) * cfg.Base)
		e.until.Store(o.lastEnd.UnixNano())
		o.consecutive = 0
	})
}
