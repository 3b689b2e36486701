package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Option configures [New].
type Option func(*config) error

type config struct {
	trusted        trusted
	preAuthRate    float64
	preAuthBurst   int
	noPreAuth      bool
	maxKeys        int
	meterProvider  metric.MeterProvider
	logger         *slog.Logger
	now            func() time.Time
	readyPath      string
	readyTTL       time.Duration
	auth           *authHook
	tokenTTL       time.Duration
	tokenSize      int
	noTokenCache   bool
	exposeUpstream bool
}

// Defaults of [New]; each has an option.
const (
	// DefaultPreAuthRate is how many failed token verifications a second one
	// client IP address may cause before the gateway stops verifying its tokens
	// ([WithPreAuthLimit]).
	DefaultPreAuthRate = 20
	// DefaultPreAuthBurst is the burst of failed verifications allowed at once
	// ([WithPreAuthLimit]).
	DefaultPreAuthBurst = 100
	// DefaultReadyPath is the path [Gateway.Ready] asks each routed service
	// for ([WithReadiness]).
	DefaultReadyPath = "/health/ready"
	// DefaultReadyTTL is how long [Gateway.Ready] reuses a service's answer
	// ([WithReadiness]).
	DefaultReadyTTL = time.Second
)

// WithTrustedProxies names the networks, in CIDR notation ("10.0.0.0/8",
// "2001:db8::/32") or as single addresses, whose X-Forwarded-For,
// X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers the gateway
// believes: the load balancers in front of it. The default is none: every
// incoming forwarding header is dropped and the connection's peer is the
// client. Each call adds to the list.
func WithTrustedProxies(cidrs ...string) Option {
	return func(c *config) error {
		for _, s := range cidrs {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return fmt.Errorf("WithTrustedProxies: %q is neither a CIDR nor an address", s)
				}
				p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
			c.trusted = append(c.trusted, p.Masked())
		}
		return nil
	}
}

// WithPreAuthLimit bounds the tokens that fail verification, per client IP
// address (IPv6 by /64): once an address has had burst failures, and then
// more than perSecond a second, the gateway answers its requests to routes
// that need a token with 429 before verifying anything, so that a flood of bad
// tokens cannot burn CPU on signature checks. Valid tokens cost nothing from
// this budget. The defaults are [DefaultPreAuthRate] and
// [DefaultPreAuthBurst]; both must be positive.
func WithPreAuthLimit(perSecond float64, burst int) Option {
	return func(c *config) error {
		if !(perSecond > 0) || burst <= 0 {
			return fmt.Errorf("WithPreAuthLimit(%v, %d): want a positive rate and burst", perSecond, burst)
		}
		c.preAuthRate, c.preAuthBurst = perSecond, burst
		return nil
	}
}

// WithoutPreAuthLimit removes the limit of [WithPreAuthLimit].
func WithoutPreAuthLimit() Option {
	return func(c *config) error {
		c.noPreAuth = true
		return nil
	}
}

// WithMaxRateKeys bounds how many keys each rate limiter (each route's, and
// the pre-auth one) tracks in a generation: a limiter keeps the current and
// the previous generation, so at most 2n keys; past n new keys in one
// period, the oldest buckets are forgotten and start full again. The default
// is [DefaultMaxKeys]; at about 122 bytes a key (measured, docs/gateway.md),
// that is some 250 MB a limiter at worst.
func WithMaxRateKeys(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxRateKeys(%d): want a positive number", n)
		}
		c.maxKeys = n
		return nil
	}
}

// WithMeterProvider sets the provider of the gateway's metrics. The default is
// the global provider (otel.GetMeterProvider), read when New is called.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) error {
		if mp == nil {
			return errors.New("WithMeterProvider: nil provider")
		}
		c.meterProvider = mp
		return nil
	}
}

// WithLogger sets where the gateway logs upstream failures (at Warn) and the
// reverse proxy's own errors. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithClock sets the clock of rate limits, the readiness cache, the
// verified-token cache's expiry and the pier.gateway.jwks.age gauge. The
// default is time.Now. Route timeouts run on real timers whatever the clock.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("WithClock: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithReadiness sets the path [Gateway.Ready] asks every routed service for
// and how long it reuses an answer. The defaults are [DefaultReadyPath] and
// [DefaultReadyTTL]; zero keeps a default.
func WithReadiness(path string, ttl time.Duration) Option {
	return func(c *config) error {
		if path != "" {
			if p, err := canonicalPath(path); err != nil || p != path {
				return fmt.Errorf("WithReadiness: path %q is not a canonical path", path)
			}
			c.readyPath = path
		}
		switch {
		case ttl < 0:
			return fmt.Errorf("WithReadiness: ttl %v is negative", ttl)
		case ttl > 0:
			c.readyTTL = ttl
		}
		return nil
	}
}

// WithUpstreamErrors makes the problem documents of 502 answers carry the
// error the upstream call failed with. The default keeps it out of answers,
// since it names internal addresses, and logs it only.
func WithUpstreamErrors() Option {
	return func(c *config) error {
		c.exposeUpstream = true
		return nil
	}
}
