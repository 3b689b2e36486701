package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/internal/resolvecache"
)

// ScopeName is the instrumentation scope of the Resolver's metrics.
const ScopeName = "github.com/pier-go/pier/discovery/dns"

// maxParallel bounds the SRV targets whose addresses are looked up at once.
const maxParallel = 8

// Resolver is a [discovery.Resolver] over DNS records: SRV records by default,
// A/AAAA records with [WithPort]. It looks each service up in the background,
// every refresh interval, and serves Resolve from the last answer. It only
// resolves: Kubernetes, not the service, decides which pods DNS lists. Make one
// with [New] and stop it with [Resolver.Close]; it is safe for concurrent use.
type Resolver struct {
	res      *net.Resolver
	suffix   string // appended to a service's name: "" or ".<domain>."
	srv      bool
	portName string
	proto    string
	port     uint16 // A/AAAA mode
	refresh  time.Duration
	timeout  time.Duration // of one lookup

	cache *resolvecache.Cache
}

var _ discovery.Resolver = (*Resolver)(nil)

// New returns a Resolver configured by opts. It validates the options and
// returns an error naming each invalid one; it makes no lookup and starts no
// goroutine until the first Resolve of a service.
func New(opts ...Option) (*Resolver, error) {
	cfg := defaultConfig()
	for i, o := range opts {
		if o == nil {
			cfg.fail("option %d is nil", i)
			continue
		}
		o(&cfg)
	}
	if cfg.srvSet && cfg.port != 0 {
		cfg.fail("WithSRV and WithPort both given: choose SRV records, which carry the port, or A/AAAA records on a fixed port")
	}
	r := &Resolver{
		res:      cfg.resolver,
		srv:      cfg.port == 0,
		portName: cfg.portName,
		proto:    cfg.proto,
		port:     uint16(cfg.port),
		refresh:  cfg.refresh,
		timeout:  min(max(cfg.refresh, minLookupTimeout), maxLookupTimeout),
	}
	if cfg.domain != "" {
		r.suffix = "." + cfg.domain + "."
	}
	// The longest name looked up, for a 63-character service name, without its
	// trailing dot: DNS allows 253 characters.
	longest := 63 + len(cfg.domain) + 1
	if r.srv {
		longest += len("_" + r.portName + "._" + r.proto + ".")
	}
	if cfg.domain != "" && longest > 253 {
		cfg.fail("WithDomain(%q): too long: a 63-character service name would make a name of %d characters, past the 253 DNS allows", cfg.domain, longest)
	}
	if len(cfg.errs) > 0 {
		return nil, errors.Join(cfg.errs...)
	}
	if r.res == nil {
		r.res = &net.Resolver{StrictErrors: true, Dial: dialContext}
	}
	mp := cfg.meter
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	r.cache = resolvecache.New("dns", r.fetch, resolvecache.Options{
		MinBackoff: cfg.minBackoff,
		MaxBackoff: cfg.maxBackoff,
		Meter:      mp.Meter(ScopeName),
	})
	return r, nil
}

// Resolve returns the instances of service from the last successful lookup,
// sorted by address, without allocating; the slice must not be modified. Each
// instance has the ID "service@address", the Service asked for and the Addr
// host:port; DNS carries no tags or metadata. The first Resolve of a service
// starts its background lookups and waits for the first answer, or for ctx.
// Resolve returns an error wrapping [discovery.ErrNoInstances] when the DNS
// server says the service has no records (NXDOMAIN, or no record of the type),
// the first lookup's error while no lookup has succeeded, and an error after
// [Resolver.Close]. A lookup that fails after one has succeeded leaves the
// last answer in place ([Resolver.Staleness]).
func (r *Resolver) Resolve(ctx context.Context, service string) ([]discovery.Instance, error) {
	return r.cache.Resolve(ctx, service)
}

// Staleness reports how long the instances of service have gone unconfirmed:
// 0 while its last lookup succeeded, else the time since the last success (or
// since its first Resolve, when none has). It returns false for a service that
// was never resolved. Export it as a metric: a growing value means the DNS
// server cannot be reached and Resolve serves an old answer.
func (r *Resolver) Staleness(service string) (time.Duration, bool) {
	st, ok := r.cache.State(service)
	if !ok {
		return 0, false
	}
	return st.Staleness(time.Now()), true
}

// Close stops the background lookups of every service and waits for them to
// return; a lookup in flight is abandoned. It unregisters the callback of the
// Resolver's gauges. Resolve fails after Close. Close is idempotent and
// always returns nil.
func (r *Resolver) Close() error {
	return r.cache.Close()
}

// fetch is the resolvecache.Fetch of the Resolver: index 0 looks service up at
// once, any other waits for the refresh interval first (unless the last lookup
// failed: the cache's backoff has waited already). It returns index+1.
func (r *Resolver) fetch(ctx context.Context, service string, index uint64) ([]discovery.Instance, uint64, error) {
	if index > 0 {
		if st, _ := r.cache.State(service); st.Err == nil {
			t := time.NewTimer(r.refresh)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, index, ctx.Err()
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var instances []discovery.Instance
	var err error
	if r.srv {
		instances, err = r.lookupSRV(ctx, service)
	} else {
		instances, err = r.lookupIP(ctx, service)
	}
	if err != nil {
		return nil, index, err
	}
	return instances, index + 1, nil
}

// lookupIP looks up the A and AAAA records of service's name, in A/AAAA mode.
func (r *Resolver) lookupIP(ctx context.Context, service string) ([]discovery.Instance, error) {
	ips, err := r.res.LookupNetIP(ctx, "ip", service+r.suffix)
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, err
	}
	addrs := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, netip.AddrPortFrom(ip.Unmap(), r.port))
	}
	return instances(service, addrs), nil
}

// lookupSRV looks up the SRV records of service, then the addresses of their
// targets, in SRV mode. Priorities and weights are ignored: Kubernetes gives
// every endpoint the same, and the client balances by load.
func (r *Resolver) lookupSRV(ctx context.Context, service string) ([]discovery.Instance, error) {
	_, srvs, err := r.res.LookupSRV(ctx, r.portName, r.proto, service+r.suffix)
	// With records whose target is not a valid name, the Go resolver returns the
	// valid ones and an error: use them.
	if err != nil && len(srvs) == 0 {
		if notFound(err) {
			return nil, nil
		}
		return nil, err
	}
	var targets []string
	ports := make(map[string][]uint16)
	for _, s := range srvs {
		// "." says the service is not available (RFC 2782); port 0 is no address.
		if s.Target == "." || s.Port == 0 {
			continue
		}
		if _, ok := ports[s.Target]; !ok {
			targets = append(targets, s.Target)
		}
		ports[s.Target] = append(ports[s.Target], s.Port)
	}
	ips, err := r.lookupTargets(ctx, targets)
	if err != nil {
		return nil, err
	}
	var addrs []netip.AddrPort
	for i, target := range targets {
		for _, ip := range ips[i] {
			for _, port := range ports[target] {
				addrs = append(addrs, netip.AddrPortFrom(ip.Unmap(), port))
			}
		}
	}
	return instances(service, addrs), nil
}

// lookupTargets looks up the addresses of each target, maxParallel at a time,
// and returns them in the order of targets. A target that has no address (its
// pod went away since the SRV answer) has none; any other failure fails the
// whole lookup, so that the last good answer stays rather than a partial one.
func (r *Resolver) lookupTargets(ctx context.Context, targets []string) ([][]netip.Addr, error) {
	ips := make([][]netip.Addr, len(targets))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(len(targets), maxParallel) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(targets) || ctx.Err() != nil {
					return
				}
				found, err := r.res.LookupNetIP(ctx, "ip", targets[i])
				if err != nil && !notFound(err) {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					return
				}
				ips[i] = found
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ips, nil
}

// instances returns an instance of service for each distinct address, sorted by
// Addr, or nil for none.
func instances(service string, addrs []netip.AddrPort) []discovery.Instance {
	if len(addrs) == 0 {
		return nil
	}
	out := make([]discovery.Instance, 0, len(addrs))
	seen := make(map[netip.AddrPort]bool, len(addrs))
	for _, ap := range addrs {
		if seen[ap] {
			continue
		}
		seen[ap] = true
		addr := ap.String()
		out = append(out, discovery.Instance{ID: service + "@" + addr, Service: service, Addr: addr})
	}
	slices.SortFunc(out, func(a, b discovery.Instance) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

// notFound reports whether err says that the name has no record of the type
// asked for: an answer, not a failure.
func notFound(err error) bool {
	dnsErr, ok := errors.AsType[*net.DNSError](err)
	return ok && dnsErr.IsNotFound
}

// dialContext is the Dial of the default resolver: net.Dialer's, except that
// the connection's deadline passes as soon as ctx ends. The Go resolver bounds
// each query by a deadline only, and carries on with a lookup its caller has
// abandoned; without this a silent server would hold a lookup, and Close,
// for the whole resolv.conf timeout.
func dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	// The resolver ends ctx when the query is done, so this runs once per query,
	// on a connection the resolver has usually closed already.
	context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return c, nil
}
