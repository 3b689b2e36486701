package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"go.opentelemetry.io/otel"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/internal/resolvecache"
)

// ScopeName is the instrumentation scope of the registry's metrics.
const ScopeName = "github.com/pier-go/pier/discovery/consul"

// Registry is a [discovery.Registry] over a Consul agent: Register and
// Deregister go to the agent, Resolve reads a cache that a blocking query per
// service keeps current. Make one with [New] and stop it with [Registry.Close].
// Its methods are safe for concurrent use.
type Registry struct {
	client *api.Client
	cfg    config
	logger *slog.Logger
	cache  *resolvecache.Cache

	wg     sync.WaitGroup // the maintenance loops
	closed atomic.Bool
	once   sync.Once

	mu    sync.Mutex
	loops map[string]*loop   // by instance ID: the instances this registry maintains
	locks map[string]*idLock // by instance ID: serializes Register and Deregister

}

// New returns a Registry that registers instances with, and resolves services
// through, the Consul agent that client talks to. The client's configuration
// carries the agent's address, the ACL token, TLS settings and the default
// datacenter; the Registry reads nothing from the environment. New validates
// the options and makes no network call; it returns an error for a nil client
// or a bad option.
func New(client *api.Client, opts ...Option) (*Registry, error) {
	if client == nil {
		return nil, errors.New("consul: nil client")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("consul: nil option")
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("consul: %w", err)
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		client: client,
		cfg:    cfg,
		logger: logger,
		loops:  make(map[string]*loop),
		locks:  make(map[string]*idLock),
	}
	mp := cfg.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	r.cache = resolvecache.New("consul", r.fetch, resolvecache.Options{
		MinBackoff: cfg.minBackoff,
		MaxBackoff: cfg.maxBackoff,
		OnChange:   r.watched,
		Meter:      mp.Meter(ScopeName),
	})
	return r, nil
}

// Resolve returns the healthy instances of service: those whose every check
// passes, and that carry the tags of [WithTags]. The first call for a service
// starts its watch and waits for the agent's first answer, or for ctx; later
// calls read memory and never block. While the agent cannot be reached,
// Resolve keeps returning the last set it saw (see [Registry.Staleness]). It
// returns an error wrapping [discovery.ErrNoInstances] when the service has no
// healthy instance, and an error after Close.
func (r *Registry) Resolve(ctx context.Context, service string) ([]discovery.Instance, error) {
	return r.cache.Resolve(ctx, service)
}

// Staleness reports how long the instances Resolve returns for service have
// gone unconfirmed by the agent: 0 while its watch is healthy, and the time
// since the last successful answer while the watch fails. ok is false when
// service has never been resolved.
func (r *Registry) Staleness(service string) (d time.Duration, ok bool) {
	st, ok := r.cache.State(service)
	if !ok {
		return 0, false
	}
	return st.Staleness(time.Now()), true
}

// Close stops every goroutine the Registry started: the watches of Resolve,
// the TTL marks and the re-registration loops, and waits for them. It does not
// deregister anything: call Deregister first for the instances that should
// leave. It unregisters the callback of the registry's gauges. Resolve and
// Register fail after Close; Deregister still works. Close is idempotent and
// always returns nil.
func (r *Registry) Close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed.Store(true)
		for _, l := range r.loops { // no loop starts once closed is set
			l.cancel()
		}
		r.mu.Unlock()
		r.wg.Wait()
		_ = r.cache.Close()
	})
	return nil
}

// fetch is the resolvecache.Fetch of the registry: one blocking query of the
// health endpoint for the passing instances of service. (After a failure the
// cache asks with index 0, for the current set at once.)
func (r *Registry) fetch(ctx context.Context, service string, index uint64) ([]discovery.Instance, uint64, error) {
	// Consul answers a blocking query after the wait time plus up to 1/16 of it
	// as jitter; a query that takes much longer went to a connection that died
	// silently.
	ctx, cancel := context.WithTimeout(ctx, r.cfg.waitTime+r.cfg.waitTime/16+10*time.Second)
	defer cancel()
	q := &api.QueryOptions{WaitIndex: index, WaitTime: r.cfg.waitTime, Datacenter: r.cfg.datacenter}
	entries, meta, err := r.client.Health().ServiceMultipleTags(service, r.cfg.tags, true, q.WithContext(ctx))
	if err != nil {
		return nil, 0, err
	}
	ins := make([]discovery.Instance, 0, len(entries))
	for _, e := range entries {
		if in, ok := instance(e); ok {
			ins = append(ins, in)
		}
	}
	// Consul's guidance for blocking queries: an index below 1 would make the
	// next query return at once, again and again.
	return ins, max(meta.LastIndex, 1), nil
}

// instance converts a health entry; ok is false for an entry without a service.
func instance(e *api.ServiceEntry) (discovery.Instance, bool) {
	if e == nil || e.Service == nil {
		return discovery.Instance{}, false
	}
	host := e.Service.Address
	if host == "" && e.Node != nil {
		host = e.Node.Address // registered without an address: the node's
	}
	return discovery.Instance{
		ID:      e.Service.ID,
		Service: e.Service.Service,
		Addr:    net.JoinHostPort(host, strconv.Itoa(e.Service.Port)),
		Tags:    e.Service.Tags,
		Meta:    e.Service.Meta,
	}, true
}

// watched logs the failures of the watches, for resolvecache.Options.OnChange.
func (r *Registry) watched(service string, st resolvecache.State) {
	if st.Err == nil {
		return
	}
	if !st.Synced {
		r.logger.Warn("consul: watch failing, nothing resolved yet",
			slog.String("service", service), slog.Int("failures", st.Failures), slog.Any("err", st.Err))
		return
	}
	r.logger.Warn("consul: watch failing, serving the last-known instances",
		slog.String("service", service), slog.Int("failures", st.Failures),
		slog.Int("instances", len(st.Instances)), slog.Duration("staleness", st.Staleness(time.Now())),
		slog.Any("err", st.Err))
}

// isNotFound reports whether err is the agent's answer for an unknown service
// or check ID: 404, or a body that says so, whatever the status (agents have
// not always answered 404 to an unknown check).
func isNotFound(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code == 404 || strings.Contains(strings.ToLower(se.Body), "unknown check")
	}
	return false
}
