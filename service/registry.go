package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/internal/backoff"
)

// Timings of registration. The backoff doubles from the first to the last wait,
// with jitter, while the registry refuses or cannot be reached.
const (
	registerFirstBackoff = 100 * time.Millisecond
	registerMaxBackoff   = 30 * time.Second
	registerTimeout      = 10 * time.Second // one attempt
	// deregisterFloor is the least time deregistration is given, however short
	// the drain delay that otherwise bounds it.
	deregisterFloor = time.Second
)

// RegistryCheck is the name of the health check a Service with a registry adds:
// non-critical, failing while the instance is not registered, so /health shows
// why and readiness does not depend on the registry.
const RegistryCheck = "registry"

// WithRegistry makes the Service register itself in r once it serves and is
// ready, and deregister when it stops, during the drain delay: Deregister's
// context ends with the drain delay, or after 1 s when the drain delay is
// shorter, and the stop waits for it no longer (see [WithShutdown]). A
// registry that is down or refuses is retried in the background with backoff
// (100 ms doubling to 30 s, with jitter): that is logged at Warn and shows as
// the failing non-critical check "registry" in /health, and never stops the
// Service. The default is no registry.
//
// The instance registered has an ID of the form name-<random hex> (see
// [WithInstanceID]), the address from [WithAdvertiseAddr], the tags of
// [WithInstanceTags] and the metadata {"version": version}.
func WithRegistry(r discovery.Registry) Option {
	return func(c *config) { c.registry = r }
}

// WithResolver sets the resolver that [Service.Client] finds other services
// through, when it is not the registry the Service registers in: register
// nowhere and resolve from DNS on Kubernetes (the platform registers pods), or
// register in Consul and resolve from a static list in tests. The default is
// the registry of [WithRegistry]; with neither, the client resolves hosts by
// DNS as a plain http.Client does.
func WithResolver(r discovery.Resolver) Option {
	return func(c *config) { c.resolver = r }
}

// WithAdvertiseAddr sets the host:port other services reach this instance at,
// as registered. The default is the bound address, with an unspecified host
// (":8080" binds 0.0.0.0 or ::) replaced by this machine's first non-loopback
// IPv4 address, or 127.0.0.1 when it has none. Set it behind NAT, or from the
// pod IP (status.podIP) in Kubernetes.
func WithAdvertiseAddr(hostport string) Option {
	return func(c *config) { c.advertise = hostport }
}

// WithInstanceID sets the registered instance ID. The default is the service
// name, a hyphen and 8 random hex digits, unique per process.
func WithInstanceID(id string) Option {
	return func(c *config) { c.instanceID = id }
}

// WithInstanceTags sets the tags registered with the instance, such as
// "canary". The default is none.
func WithInstanceTags(tags ...string) Option {
	return func(c *config) { c.tags = append([]string(nil), tags...) }
}

// registration is the state of the Service's registration, read by the
// "registry" health check.
type registration struct {
	reg discovery.Registry
	err atomic.Pointer[error] // nil once registered
}

func newRegistration(r discovery.Registry) *registration {
	g := &registration{reg: r}
	g.setErr(errors.New("not registered yet"))
	return g
}

func (g *registration) setErr(err error) {
	if err == nil {
		g.err.Store(nil)
		return
	}
	g.err.Store(&err)
}

// Check implements health.Checker: the registration's state.
func (g *registration) Check(context.Context) error {
	if p := g.err.Load(); p != nil {
		return *p
	}
	return nil
}

// instance returns the Instance the Service registers, listening at bound.
func (s *Service) instance(bound net.Addr) (discovery.Instance, error) {
	addr := s.cfg.advertise
	if addr == "" {
		var err error
		if addr, err = advertiseAddr(bound); err != nil {
			return discovery.Instance{}, fmt.Errorf("service %q: %w", s.name, err)
		}
	}
	in := discovery.Instance{
		ID:      s.cfg.instanceID,
		Service: s.name,
		Addr:    addr,
		Tags:    s.cfg.tags,
		Meta:    map[string]string{"version": s.cfg.version},
	}
	if in.ID == "" {
		in.ID = fmt.Sprintf("%s-%08x", s.name, rand.Uint32())
	}
	if err := in.Validate(); err != nil {
		return discovery.Instance{}, fmt.Errorf("service %q: %w", s.name, err)
	}
	return in, nil
}

// advertiseAddr turns a bound address into one others can reach.
func advertiseAddr(bound net.Addr) (string, error) {
	ap, err := netip.ParseAddrPort(bound.String())
	if err != nil {
		return "", fmt.Errorf("advertise address of %s: %w", bound, err)
	}
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() {
		ip = hostIP()
	}
	return netip.AddrPortFrom(ip, ap.Port()).String(), nil
}

// hostIP returns this machine's first non-loopback IPv4 address, or 127.0.0.1.
func hostIP() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				if ip := p.Addr(); ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
					return ip
				}
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// register registers in once the Service is ready, retrying with backoff until
// it succeeds or ctx ends.
func (s *Service) register(ctx context.Context, in discovery.Instance) {
	g := s.registration
	log := s.logger.With(slog.String("instance", in.ID), slog.String("advertise", in.Addr))
	backoff := backoff.New(registerFirstBackoff, registerMaxBackoff)
	for attempt := 1; ; attempt++ {
		var err error
		if rep := s.health.Report(ctx); !rep.Ready && ctx.Err() == nil {
			err = errors.New("waiting for the service to be ready")
		} else {
			actx, cancel := context.WithTimeout(ctx, registerTimeout)
			err = g.reg.Register(actx, in)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			g.setErr(nil)
			log.LogAttrs(ctx, slog.LevelInfo, "registered")
			return
		}
		g.setErr(err)
		wait := backoff.Next()
		log.LogAttrs(ctx, slog.LevelWarn, "registration failed; retrying",
			slog.Any("error", err), slog.Int("attempt", attempt), slog.Duration("retry_in", wait))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// deregister takes in out of the registry within timeout.
func (s *Service) deregister(in discovery.Instance, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.registration.reg.Deregister(ctx, in); err != nil {
		return fmt.Errorf("service %q: deregister %q: %w", s.name, in.ID, err)
	}
	s.registration.setErr(errors.New("deregistered"))
	s.logger.LogAttrs(ctx, slog.LevelInfo, "deregistered", slog.String("instance", in.ID))
	return nil
}
