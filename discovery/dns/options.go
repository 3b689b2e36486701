package dns

import (
	"fmt"
	"net"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults for a [Resolver]. Each can be changed with the option named beside it.
const (
	// DefaultPortName is the port name of the SRV records looked up, as in
	// _http._tcp.<service> ([WithSRV]).
	DefaultPortName = "http"
	// DefaultProto is the protocol of the SRV records looked up ([WithSRV]).
	DefaultProto = "tcp"
	// DefaultRefresh is how often a service's records are looked up again
	// ([WithRefresh]). It matches the TTL CoreDNS's kubernetes plugin gives its
	// answers by default, and is a sixth of the 30 s TTL and cache of the Corefile
	// Kubernetes installs: once the cluster DNS serves a change, a caller sees it
	// within 5 s. The cost is small: every 5 s, per service, one SRV query and
	// an A and an AAAA query per target, which the DNS server's cache answers.
	DefaultRefresh = 5 * time.Second
	// DefaultMinBackoff is the first wait before a failed lookup is tried
	// again; the wait doubles, with jitter, after each further failure
	// ([WithBackoff]).
	DefaultMinBackoff = 250 * time.Millisecond
	// DefaultMaxBackoff caps the wait before a failed lookup is tried again
	// ([WithBackoff]).
	DefaultMaxBackoff = 30 * time.Second
)

// maxLookupTimeout bounds one lookup (the SRV query and the address queries of
// its targets) when the refresh interval is longer: it is the per-try timeout
// of a default resolv.conf.
const maxLookupTimeout = 5 * time.Second

// minLookupTimeout keeps a short refresh interval from failing lookups that a
// slow link or a loaded DNS server answers in the end.
const minLookupTimeout = time.Second

// Option configures a [Resolver]. Options are applied in order by [New], which
// reports every invalid one.
type Option func(*config)

type config struct {
	resolver   *net.Resolver
	domain     string // without a trailing dot; "" for none
	portName   string
	proto      string
	srvSet     bool // WithSRV was given
	port       int  // A/AAAA mode when not 0
	refresh    time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	meter      metric.MeterProvider
	errs       []error
}

func defaultConfig() config {
	return config{
		portName:   DefaultPortName,
		proto:      DefaultProto,
		refresh:    DefaultRefresh,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("dns: "+format, args...))
}

// WithResolver sets the resolver that looks records up. The default is a new
// net.Resolver with StrictErrors set, so that a failing query fails the whole
// lookup rather than leaving out part of the answer (an AAAA query timing out
// beside a good A one, or a search-list name answering NXDOMAIN after another
// failed), and whose connections are cut as soon as a lookup's context ends, so
// that [Resolver.Close] does not wait for a silent server. A resolver given here
// is used as it is: set StrictErrors on it for the same guarantee. The Resolver
// never changes r, nor net.DefaultResolver.
func WithResolver(r *net.Resolver) Option {
	return func(c *config) {
		if r == nil {
			c.fail("WithResolver(nil)")
			return
		}
		c.resolver = r
	}
}

// WithDomain sets the domain appended to a service's name: "users" becomes
// "users.default.svc.cluster.local." for the domain "default.svc.cluster.local"
// (a trailing dot in d is optional). The name is then fully qualified, so the
// resolv.conf search list and its ndots:5 add no queries. The default is "": the
// name as given, completed by the search list, which in a pod finds the
// service in the pod's own namespace.
func WithDomain(d string) Option {
	return func(c *config) {
		name := strings.TrimSuffix(d, ".")
		if err := checkDomain(name); err != "" {
			c.fail("WithDomain(%q): %s", d, err)
			return
		}
		c.domain = name
	}
}

// WithSRV selects SRV mode, the default, and the SRV records looked up:
// _portName._proto.<name>, such as _http._tcp.users.default.svc.cluster.local
// for the Kubernetes Service port named "http". Each record's target is looked
// up in turn (A and AAAA), and every address becomes an instance on the
// record's port. portName and proto are given without their underscores; the
// defaults are [DefaultPortName] and [DefaultProto], "http" and "tcp". It
// cannot be combined with [WithPort].
func WithSRV(portName, proto string) Option {
	return func(c *config) {
		if err := checkLabel(portName); err != "" {
			c.fail("WithSRV(%q, %q): port name %s", portName, proto, err)
			return
		}
		if err := checkLabel(proto); err != "" {
			c.fail("WithSRV(%q, %q): protocol %s", portName, proto, err)
			return
		}
		c.portName, c.proto, c.srvSet = portName, proto, true
	}
}

// WithPort selects A/AAAA mode: the service's name is looked up for its
// addresses (A and AAAA records), each an instance on port, which must be from
// 1 to 65535. Use it when the records carry no port, or when the Service's port
// has no name. The default is SRV mode ([WithSRV]); the two cannot be combined.
func WithPort(port int) Option {
	return func(c *config) {
		if port < 1 || port > 65535 {
			c.fail("WithPort(%d): want a port from 1 to 65535", port)
			return
		}
		c.port = port
	}
}

// WithRefresh sets how often each service's records are looked up again in
// the background; Resolve only reads the last answer. A change shows within
// one interval after the DNS server has it. The default is [DefaultRefresh],
// 5 s; 0 keeps it and a negative d is an error. Each lookup is bounded by d,
// but by no less than 1 s and no more than 5 s.
func WithRefresh(d time.Duration) Option {
	return func(c *config) {
		switch {
		case d < 0:
			c.fail("WithRefresh(%v): negative interval", d)
		case d > 0:
			c.refresh = d
		}
	}
}

// WithBackoff sets the wait before a failed lookup is tried again: min at
// first, doubling up to max, with jitter; the refresh interval resumes after a
// success. The defaults are [DefaultMinBackoff] and [DefaultMaxBackoff], 250 ms
// and 30 s; 0 keeps a default, while a negative value, or a max below min, is an
// error.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) {
		if min < 0 || max < 0 {
			c.fail("WithBackoff(%v, %v): negative backoff", min, max)
			return
		}
		if min > 0 {
			c.minBackoff = min
		}
		if max > 0 {
			c.maxBackoff = max
		}
		if c.maxBackoff < c.minBackoff {
			c.fail("WithBackoff(%v, %v): max below min (%v)", min, max, c.minBackoff)
		}
	}
}

// WithMeterProvider sets where the Resolver's metrics go: for every service
// it resolves, pier.discovery.instances (the instances Resolve returns),
// pier.discovery.staleness (see [Resolver.Staleness], in seconds) and
// pier.discovery.watch.errors (failed lookups), with the attributes
// pier.service and registry="dns". The gauges' callback is unregistered by
// [Resolver.Close]. The default is otel.GetMeterProvider() at the time of
// [New], the global provider; nil keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meter = mp }
}

// checkLabel returns what is wrong with s as the port name or protocol of an
// SRV name, or "".
func checkLabel(s string) string {
	if strings.HasPrefix(s, "_") {
		return fmt.Sprintf("%q: give it without the underscore", s)
	}
	ok := len(s) >= 1 && len(s) <= 63 && s[0] != '-' && s[len(s)-1] != '-'
	for i := 0; ok && i < len(s); i++ {
		ch := s[i]
		ok = 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-'
	}
	if !ok {
		return fmt.Sprintf("%q: want 1 to 63 letters, digits and inner hyphens", s)
	}
	return ""
}

// checkDomain returns what is wrong with d (without its trailing dot) as a
// domain, or "".
func checkDomain(d string) string {
	if d == "" {
		return ""
	}
	for label := range strings.SplitSeq(d, ".") {
		ok := len(label) >= 1 && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		for i := 0; ok && i < len(label); i++ {
			ch := label[i]
			ok = 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_'
		}
		if !ok {
			return fmt.Sprintf("label %q: want 1 to 63 letters, digits, underscores and inner hyphens", label)
		}
	}
	return ""
}
