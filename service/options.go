package service

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/health"
	"github.com/pier-go/pier/internal/bodylimit"
	"github.com/pier-go/pier/resilience"
)

// Defaults for a [Service]. Each can be changed with the option named beside it.
const (
	// DefaultAddr is the address a Service listens on ([WithAddr]).
	DefaultAddr = ":8080"
	// DefaultRequestTimeout bounds each request's context ([WithRequestTimeout]).
	DefaultRequestTimeout = 30 * time.Second
	// DefaultBodyLimit is the largest request body accepted, in bytes ([WithBodyLimit]).
	DefaultBodyLimit = bodylimit.Default
	// DefaultDrainDelay is how long a stopping Service keeps serving after it has
	// turned unready, so that load balancers and registries stop sending to it
	// ([WithShutdown]).
	DefaultDrainDelay = 5 * time.Second
	// DefaultShutdownTimeout bounds http.Server.Shutdown ([WithShutdown]).
	DefaultShutdownTimeout = 15 * time.Second
	// DefaultStopTimeout bounds what runs after http.Server.Shutdown: the OnStop
	// hooks, the admin listener's shutdown and the telemetry flush
	// ([WithStopTimeout]).
	DefaultStopTimeout = 5 * time.Second
	// DefaultReadHeaderTimeout is http.Server.ReadHeaderTimeout.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout is http.Server.IdleTimeout.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxHeaderBytes is http.Server.MaxHeaderBytes: 64 KiB, against
	// net/http's 1 MiB, which lets a client pin a megabyte per connection.
	DefaultMaxHeaderBytes = 64 << 10
)

// Option configures a [Service]. Options are applied in order by [New].
type Option func(*config)

// hook is one WithOnStart or WithOnStop; exactly one of its functions is set.
type hook struct {
	start func(ctx context.Context) error
	stop  func(ctx context.Context) error
}

type healthCheck struct {
	name string
	c    health.Checker
	opts []health.CheckOption
}

type config struct {
	addr            string
	listener        net.Listener
	version         string
	logger          *slog.Logger
	checks          []healthCheck
	middleware      []func(http.Handler) http.Handler
	requestTimeout  time.Duration // 0 until resolve: the default
	bodyLimit       int64
	drainDelay      time.Duration
	shutdownTimeout time.Duration
	stopTimeout     time.Duration
	noTimeout       bool // WithoutRequestTimeout
	noBodyLimit     bool // WithoutBodyLimit
	noDrain         bool // WithoutDrainDelay
	hooks           []hook
	noAccessLog     bool
	registry        discovery.Registry
	resolver        discovery.Resolver // nil: the registry
	clientOpts      []discovery.ClientOption
	advertise       string
	instanceID      string
	tags            []string

	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	metricsPath    string
	metricsPathSet bool // WithMetricsPath gave a path
	noMetrics      bool // WithoutMetricsEndpoint
	adminAddr      string
	pprof          bool
	shed           bool
	shedOpts       []resilience.ShedOption
}

func defaultConfig() config {
	return config{addr: DefaultAddr}
}

// resolve checks the options' values and puts the defaults in place of the
// zeros: zero means the default, a negative value is an error, and a
// WithoutX option turns X off.
func (c *config) resolve() error {
	for _, v := range []struct {
		name string
		neg  bool
		val  any
	}{
		{"request timeout", c.requestTimeout < 0, c.requestTimeout},
		{"body limit", c.bodyLimit < 0, c.bodyLimit},
		{"drain delay", c.drainDelay < 0, c.drainDelay},
		{"shutdown timeout", c.shutdownTimeout < 0, c.shutdownTimeout},
		{"stop timeout", c.stopTimeout < 0, c.stopTimeout},
	} {
		if v.neg {
			return fmt.Errorf("negative %s %v", v.name, v.val)
		}
	}
	c.requestTimeout = orDefault(c.requestTimeout, DefaultRequestTimeout, c.noTimeout)
	c.bodyLimit = orDefault(c.bodyLimit, DefaultBodyLimit, c.noBodyLimit)
	c.drainDelay = orDefault(c.drainDelay, DefaultDrainDelay, c.noDrain)
	c.shutdownTimeout = cmp.Or(c.shutdownTimeout, DefaultShutdownTimeout)
	c.stopTimeout = cmp.Or(c.stopTimeout, DefaultStopTimeout)
	switch {
	case c.noMetrics:
		c.metricsPath = ""
	case c.metricsPath == "":
		c.metricsPath = DefaultMetricsPath
	}
	return nil
}

// orDefault is v, or def when v is zero, or zero when the thing is off.
func orDefault[T int64 | time.Duration](v, def T, off bool) T {
	if off {
		return 0
	}
	return cmp.Or(v, def)
}

// WithAddr sets the TCP address to listen on, as in net.Listen("tcp", addr).
// The default is [DefaultAddr], ":8080". Use "127.0.0.1:0" for a free port on
// loopback; [Service.Addr] then tells which one was bound.
func WithAddr(addr string) Option {
	return func(c *config) { c.addr = addr }
}

// WithListener makes the Service serve on ln instead of binding an address; the
// Service closes ln when Run returns. It overrides [WithAddr]. The default is nil:
// bind the address.
func WithListener(ln net.Listener) Option {
	return func(c *config) { c.listener = ln }
}

// WithVersion sets the version the Service reports in its logs (and, with a
// registry, in its registration metadata). The default is "".
func WithVersion(v string) Option {
	return func(c *config) { c.version = v }
}

// WithLogger sets the logger for the Service's own logs and its access log. The
// default is [NewLogger] with no options: JSON on stderr, or tint when stderr is a
// terminal, with LOG_LEVEL and LOG_FORMAT honoured. The Service adds a "service"
// attribute with its name, and wraps the handler with [NewContextHandler] so that
// lines logged with a request's context carry trace_id, span_id and request_id.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithHealthCheck adds a named check to the Service's readiness. Checks are
// critical unless [health.NonCritical] is given, and time out after
// [health.DefaultTimeout] unless [health.Timeout] says otherwise. By default a
// Service has no checks: it is ready as soon as it serves. Names must be unique.
func WithHealthCheck(name string, c health.Checker, opts ...health.CheckOption) Option {
	return func(cfg *config) {
		cfg.checks = append(cfg.checks, healthCheck{name: name, c: c, opts: opts})
	}
}

// WithMiddleware appends middleware that wraps every route, inside the built-in
// stack (recovery, request ID, trace span, access log, load shedding, request
// timeout, body limit), so it sees the request ID, the span and the deadline.
// The first given is the outermost. The default is none.
func WithMiddleware(mw ...func(http.Handler) http.Handler) Option {
	return func(c *config) { c.middleware = append(c.middleware, mw...) }
}

// WithRequestTimeout bounds each request's context; a handler still running at
// the deadline gets a 503 problem response sent on its behalf (see [Timeout]). The
// default is [DefaultRequestTimeout], 30 s; 0 keeps it, a negative d makes
// [New] fail, and [WithoutRequestTimeout] removes the bound.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) { c.requestTimeout = d }
}

// WithoutRequestTimeout removes the Service's bound on each request: a
// request's context then ends only when its client goes or when the caller's
// deadline ([discovery.TimeoutHeader]) comes. The default is
// [DefaultRequestTimeout].
func WithoutRequestTimeout() Option {
	return func(c *config) { c.noTimeout = true }
}

// WithBodyLimit sets the largest request body accepted, in bytes; larger bodies
// get 413 (see [BodyLimit]). The default is [DefaultBodyLimit], 1 MiB; 0 keeps
// it, a negative n makes [New] fail, and [WithoutBodyLimit] removes the limit.
func WithBodyLimit(n int64) Option {
	return func(c *config) { c.bodyLimit = n }
}

// WithoutBodyLimit removes the limit on request bodies, for a Service behind a
// proxy that bounds them. [DecodeJSON] then reads a body whole, however long
// (see [BodyLimit]); the idempotency middleware, which keeps a keyed request's
// body in memory, still holds it to [DefaultBodyLimit]. The default is
// [DefaultBodyLimit].
func WithoutBodyLimit() Option {
	return func(c *config) { c.noBodyLimit = true }
}

// WithShutdown sets the two timings of a graceful stop. drainDelay is how long
// the Service keeps serving after it turns unready (503 on /health/ready), so
// that load balancers and registries stop routing to it; it should be at least
// the propagation time of your discovery system. With a registry
// ([WithRegistry]) the instance is deregistered during the drain delay, and
// given at least 1 s for it. timeout bounds http.Server.Shutdown, which waits
// for in-flight requests; connections still open after it are closed. The
// defaults are [DefaultDrainDelay], 5 s, and [DefaultShutdownTimeout], 15 s;
// a zero keeps its default and a negative value makes [New] fail.
// [WithoutDrainDelay] skips the drain.
//
// Run returns within the drain delay (at least 1 s with a registry), plus
// timeout, plus the stop timeout ([WithStopTimeout], 5 s): 25 s with the
// defaults, inside Kubernetes' default 30 s grace period, provided that the
// registry, the OnStop hooks and the exporters honour their contexts.
func WithShutdown(drainDelay, timeout time.Duration) Option {
	return func(c *config) {
		c.drainDelay, c.shutdownTimeout = drainDelay, timeout
	}
}

// WithoutDrainDelay makes a stopping Service shut its server down as soon as it
// has turned unready, without waiting for callers to notice: for a Service
// nothing routes to by discovery (a test, a one-process demo). With a
// registry, deregistration still gets its 1 s. The default is
// [DefaultDrainDelay].
func WithoutDrainDelay() Option {
	return func(c *config) { c.noDrain = true }
}

// WithStopTimeout bounds the last steps of a graceful stop, which run after
// http.Server.Shutdown (see [WithShutdown]), all together: the OnStop hooks,
// whose context ends after four fifths of d, then the admin listener's
// shutdown and the flush of the telemetry providers the Service built, in
// what remains of d (at least a fifth, so a hook that uses all its time
// leaves the flush its share). The default is [DefaultStopTimeout], 5 s; 0
// keeps it, and a negative d makes [New] fail.
func WithStopTimeout(d time.Duration) Option {
	return func(c *config) { c.stopTimeout = d }
}

// WithOnStart adds a hook that [Service.Run] calls with its context after
// the listener is bound and before the first request is served. OnStart hooks
// run in the order they are given; one that returns an error stops the start:
// the OnStop hooks given before it run, in reverse order, and Run returns the
// errors. Give each resource's WithOnStop right after its WithOnStart, so that
// it is stopped exactly when it was started. The default is no hooks; a nil f
// makes [New] fail.
func WithOnStart(f func(ctx context.Context) error) Option {
	return func(c *config) { c.hooks = append(c.hooks, hook{start: f}) }
}

// WithOnStop adds a hook that [Service.Run] calls after the server has shut
// down. OnStop hooks run in the reverse of the order they are given, every one
// of them whatever the others return, with a context that ends within the stop
// timeout (see [WithStopTimeout]); Run returns their errors. After a failed
// start only those given before the failing OnStart run (see [WithOnStart]).
// The default is no hooks; a nil f makes [New] fail.
func WithOnStop(f func(ctx context.Context) error) Option {
	return func(c *config) { c.hooks = append(c.hooks, hook{stop: f}) }
}

// WithoutAccessLog turns the access log off, where a proxy or mesh already
// logs every request: it is about half of what the built-in stack costs. The
// default is on: one line per request at Info (Error for 5xx; Debug for the
// health and metrics endpoints).
func WithoutAccessLog() Option {
	return func(c *config) { c.noAccessLog = true }
}

// WithClientOptions configures the client [Service.Client] returns. The default
// is [discovery.NewClient]'s defaults, with the Service's tracer provider, meter
// provider and propagator; opts are applied after those, so they win.
func WithClientOptions(opts ...discovery.ClientOption) Option {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}
