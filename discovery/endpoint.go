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

// observe records an attempt's latency, or the failure penalty when it failed.
func (e *endpoint) observe(now time.Time, rtt time.Duration, failed bool) {
	sample := float64(rtt)
	if failed {
		sample = max(sample, float64(failurePenalty))
	}
	ns := now.UnixNano()
	e.mu.Lock()
	switch {
	case e.stamp == 0 || sample > e.ewma:
		e.ewma = sample
	default:
		elapsed := float64(max(ns-e.stamp, 0))
		w := math.Exp(-elapsed / float64(ewmaTau))
		e.ewma = e.ewma*w + sample*(1-w)
	}
	e.stamp = ns
	e.cost.Store(math.Float64bits(e.ewma))
	e.mu.Unlock()
}

// load is the balancer's measure of e: latency times the requests it would
// then have in flight. An endpoint without a sample yet costs nothing, so new
// instances are tried at once.
func (e *endpoint) load() float64 {
	return math.Float64frombits(e.cost.Load()) * float64(e.inflight.Load()+1)
}

// Ejection configures outlier ejection, after Envoy's consecutive-failure
// detection.
type Ejection struct {
	// Consecutive is how many failures in a row eject an instance. Default 5
	// (Envoy's consecutive_5xx); negative disables ejection.
	Consecutive int
	// Base is how long the first ejection lasts; the n-th lasts n times Base,
	// up to 10 times. Default 30 s (Envoy's base_ejection_time).
	Base time.Duration
	// MaxPercent caps the share of a service's instances ejected at once;
	// at least one instance can always be ejected. Default 50.
	MaxPercent int
}

func (c Ejection) withDefaults() Ejection {
	if c.Consecutive == 0 {
		c.Consecutive = 5
	}
	if c.Base <= 0 {
		c.Base = 30 * time.Second
	}
	if c.MaxPercent <= 0 || c.MaxPercent > 100 {
		c.MaxPercent = 50
	}
	return c
}

// ejected reports whether e is ejected at now.
func (e *endpoint) ejected(now time.Time) bool {
	return now.UnixNano() < e.until.Load()
}

// record counts an attempt's outcome for ejection and reports whether it
// ejected e. allowed tells whether the service may eject one more instance; it
// runs under e.mu and must not take another endpoint's lock.
func (e *endpoint) record(now time.Time, failed bool, cfg Ejection, allowed func() bool) bool {
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
	if !allowed() {
		return false
	}
	// The multiplier falls back by one for every Base the instance has been
	// healthy since its last ejection ended.
	if !o.lastEnd.IsZero() {
		o.ejections -= int(now.Sub(o.lastEnd) / cfg.Base)
		o.ejections = max(o.ejections, 0)
	}
	o.ejections = min(o.ejections+1, 10)
	o.lastEnd = now.Add(time.Duration(o.ejections) * cfg.Base)
	e.until.Store(o.lastEnd.UnixNano())
	o.consecutive = 0
	return true
}
