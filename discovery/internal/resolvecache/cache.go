// Package resolvecache serves discovery.Resolver.Resolve from memory for
// resolvers whose source is remote (Consul, DNS): one background watch per
// service keeps the instances current, and Resolve reads them without a call.
//
// It is written here rather than taken from a library because what it must do
// is specific: keep the last-known-good set while the source fails (an error
// never empties it), say how stale that set is, back off with jitter, and stop
// every goroutine it started when closed. It is internal so that
// discovery/consul and discovery/dns share it without making it API.
package resolvecache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/internal/backoff"
)

// RegistryKey is the attribute of the cache's metrics that names it: "consul",
// "dns". The other is the service's, discovery.ServiceKey.
const RegistryKey = attribute.Key("registry")

// Fetch returns the instances of service once they may differ from those at
// index, with the index of what it returns: a Consul blocking query, or a DNS
// lookup after the refresh interval. Index 0 asks for the current instances at
// once. A Fetch returns promptly when ctx ends.
type Fetch func(ctx context.Context, service string, index uint64) ([]discovery.Instance, uint64, error)

// Options tune a Cache. Zero values mean the defaults.
type Options struct {
	// MinBackoff is the first wait after a failed fetch; it doubles up to
	// MaxBackoff, with jitter, and resets on success. Defaults: 250 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// OnChange, if set, is called from the watch goroutine after every fetch with
	// the service and its new state.
	OnChange func(service string, st State)
	// Meter, if set, makes the cache report, for every service it watches,
	// with the attributes pier.service and registry (the cache's name):
	// pier.discovery.instances, the size of the last-known-good set;
	// pier.discovery.staleness, [State.Staleness] in seconds; and
	// pier.discovery.watch.errors, a count of failed fetches. The gauges'
	// callback is registered in New and unregistered by Close.
	Meter metric.Meter
}

// State is what a Cache knows of one service.
type State struct {
	// Instances is the last-known-good set (nil until a fetch succeeded).
	Instances []discovery.Instance
	// Synced reports whether a fetch has ever succeeded.
	Synced bool
	// Updated is when the last fetch succeeded.
	Updated time.Time
	// Err is the error of the last fetch, nil when it succeeded. Resolve wraps
	// it with the resolver's name and the service.
	Err error
	// Failures counts the fetches that failed in a row.
	Failures int
}

// Staleness is how long the instances have gone unconfirmed: 0 while the last
// fetch succeeded, else the time since the last success (since the watch began,
// when there was none).
func (s State) Staleness(now time.Time) time.Duration {
	if s.Err == nil {
		return 0
	}
	return now.Sub(s.Updated)
}

// Cache is safe for concurrent use.
type Cache struct {
	name  string // for errors: "consul", "dns"
	fetch Fetch
	opts  Options

	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	// entries is read on every Resolve, from every core, and written only when
	// a service is resolved for the first time: a map replaced on write behind
	// an atomic pointer, so reads take no lock (an RWMutex's reader count made
	// parallel Resolves five times slower than serial ones on 2 cores).
	entries atomic.Pointer[map[string]*entry]
	mu      sync.Mutex // serialises writers of entries, closed and cancels
	closed  bool
	cancels []context.CancelFunc // one a watch, ending its fetch in flight

	errors metric.Int64Counter // nil without Options.Meter
	gauges metric.Registration // nil without Options.Meter
}

type entry struct {
	service string
	ready   chan struct{} // closed after the first fetch, failed or not
	state   atomic.Pointer[State]
	attrs   metric.MeasurementOption // {pier.service, registry}
	addOpts []metric.AddOption       // attrs, for the counter
}

// New returns a Cache that fetches with fetch; name prefixes its errors.
func New(name string, fetch Fetch, opts Options) *Cache {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	c := &Cache{name: name, fetch: fetch, opts: opts, done: make(chan struct{})}
	c.entries.Store(&map[string]*entry{})
	if opts.Meter != nil {
		c.instrument(opts.Meter)
	}
	return c
}

// instrument makes the cache's instruments with m and registers the gauges'
// callback. An instrument m refuses comes back beside an error, which has
// nowhere to go: a resolver cannot fail for metrics.
func (c *Cache) instrument(m metric.Meter) {
	c.errors, _ = m.Int64Counter("pier.discovery.watch.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Failed fetches of a service's instances from the registry."))
	instances, _ := m.Int64ObservableGauge("pier.discovery.instances", metric.WithUnit("{instance}"),
		metric.WithDescription("Instances of a service that Resolve returns: the last-known-good set."))
	staleness, _ := m.Float64ObservableGauge("pier.discovery.staleness", metric.WithUnit("s"),
		metric.WithDescription("How long a service's instances have gone unconfirmed by the registry: 0 while its watch succeeds."))
	if c.errors == nil { // a provider that gave no instrument at all
		c.errors = noop.Int64Counter{}
	}
	if instances == nil || staleness == nil {
		return
	}
	c.gauges, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := time.Now()
		for _, e := range *c.entries.Load() {
			st := e.state.Load()
			o.ObserveInt64(instances, int64(len(st.Instances)), e.attrs)
			o.ObserveFloat64(staleness, st.Staleness(now).Seconds(), e.attrs)
		}
		return nil
	}, instances, staleness)
}

// Resolve returns the cached instances of service. The first call for a service
// starts its watch and waits for the first fetch, or for ctx; later calls only
// read memory. When no fetch has succeeded yet it returns the last error; a
// failure after that keeps the last-known-good instances. It returns an error
// wrapping discovery.ErrNoInstances when the service has none.
func (c *Cache) Resolve(ctx context.Context, service string) ([]discovery.Instance, error) {
	e, err := c.entry(service)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.ready:
	default:
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: resolve %q: %w", c.name, service, ctx.Err())
		}
	}
	select {
	case <-c.done:
		return nil, c.closedError(service)
	default:
	}
	st := e.state.Load()
	if !st.Synced {
		return nil, fmt.Errorf("%s: resolve %q: %w", c.name, service, st.Err)
	}
	if len(st.Instances) == 0 {
		return nil, fmt.Errorf("%s: %w for %q", c.name, discovery.ErrNoInstances, service)
	}
	return st.Instances, nil
}

// State returns what the cache knows of service, and false when nothing has
// resolved it yet.
func (c *Cache) State(service string) (State, bool) {
	e := (*c.entries.Load())[service]
	if e == nil {
		return State{}, false
	}
	return *e.state.Load(), true
}

// Close stops every watch and waits for them, and unregisters the gauges'
// callback. Resolve fails after it, and so do Resolves waiting for a first
// answer when it is called. Close is idempotent.
func (c *Cache) Close() error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	cancels := c.cancels
	c.cancels = nil
	if first {
		close(c.done)
	}
	c.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
	c.wg.Wait()
	if first && c.gauges != nil {
		_ = c.gauges.Unregister()
	}
	return nil
}

// entry returns the entry of service, starting its watch on first use.
func (c *Cache) entry(service string) (*entry, error) {
	if e := (*c.entries.Load())[service]; e != nil {
		return e, nil
	}
	if err := discovery.ValidateServiceName(service); err != nil {
		return nil, fmt.Errorf("%s: resolve: %w", c.name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.closedError(service)
	}
	old := *c.entries.Load()
	if e := old[service]; e != nil {
		return e, nil
	}
	e := &entry{service: service, ready: make(chan struct{})}
	if c.errors != nil {
		e.attrs = metric.WithAttributeSet(attribute.NewSet(discovery.ServiceKey.String(service), RegistryKey.String(c.name)))
		e.addOpts = []metric.AddOption{e.attrs}
	}
	e.state.Store(&State{Updated: time.Now(), Err: errors.New("no answer yet")})
	next := make(map[string]*entry, len(old)+1)
	maps.Copy(next, old)
	next[service] = e
	c.entries.Store(&next)
	// The watch owns its context; Close ends it through cancel.
	ctx, cancel := context.WithCancel(context.Background())
	c.cancels = append(c.cancels, cancel)
	c.wg.Add(1)
	go c.watch(ctx, e)
	return e, nil
}

func (c *Cache) closedError(service string) error {
	return fmt.Errorf("%s: resolve %q: resolver closed", c.name, service)
}

// watch keeps e current until ctx, which Close cancels, ends.
func (c *Cache) watch(ctx context.Context, e *entry) {
	first := true
	defer func() {
		if first { // closed before the first answer: release the waiting Resolves
			close(e.ready)
		}
		c.wg.Done()
	}()
	var index uint64
	wait := backoff.New(c.opts.MinBackoff, c.opts.MaxBackoff)
	for ctx.Err() == nil {
		instances, next, err := c.fetch(ctx, e.service, index)
		if ctx.Err() != nil {
			return
		}
		prev := e.state.Load()
		st := *prev
		if err != nil {
			st.Err = err
			st.Failures++
			if c.errors != nil {
				c.errors.Add(ctx, 1, e.addOpts...)
			}
			// Ask for the current set at once when the source answers again,
			// rather than wait on the last index: the set may have changed
			// meanwhile, staleness should end with the first answer, not after a
			// whole blocking wait, and a source whose index restarted lower (a
			// new Consul cluster, a snapshot restore) would otherwise hold the
			// query for an index it has not reached.
			index = 0
		} else {
			st = State{Instances: instances, Synced: true, Updated: time.Now()}
			// An index that goes backwards (a Consul snapshot restore) must not
			// leave the watch waiting for an index that will not come back.
			if next < index {
				next = 0
			}
			index = next
		}
		e.state.Store(&st)
		if first {
			close(e.ready)
			first = false
		}
		if c.opts.OnChange != nil {
			c.opts.OnChange(e.service, st)
		}
		if err == nil {
			wait.Reset()
			continue
		}
		t := time.NewTimer(wait.Next())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}
