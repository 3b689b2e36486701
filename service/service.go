package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/health"
)

// Paths of the health endpoints every Service serves; see package [health].
const (
	LivePath   = "/health/live"
	ReadyPath  = "/health/ready"
	HealthPath = "/health"
)

// Service is an HTTP server with health endpoints, a default middleware stack and
// a graceful lifecycle. Make one with [New], add routes with [Service.Handle], and
// call [Service.Run]. Its methods are safe for concurrent use.
type Service struct {
	name    string
	cfg     config
	logger  *slog.Logger
	mux     *http.ServeMux
	health  *health.Monitor
	handler http.Handler // the middleware stack around mux
	tel     *telemetry
	admin   http.Handler // served on the admin listener; nil without one

	// metricsRoute is the pattern of the metrics endpoint on mux, "" when it
	// is served elsewhere or not at all.
	metricsRoute string

	running   atomic.Bool
	addr      atomic.Pointer[net.Addr]
	adminAddr atomic.Pointer[net.Addr]

	// after starts the drain delay; tests replace it to hold a Service in its
	// draining state for as long as they look at it.
	after func(time.Duration) <-chan time.Time

	registration *registration // nil without a registry

	clientOnce sync.Once
	client     *http.Client

	mu      sync.Mutex
	routeEr []error // errors of Handle calls made before Run
}

// New returns a Service named name, configured by opts. The name identifies the
// service to its callers and its registry, so it must be a DNS label: 1 to 63
// lowercase letters, digits and hyphens, not starting or ending with a hyphen.
// New binds nothing and starts nothing; [Service.Run] does. (When OTEL_*
// environment variables configure exporters, the SDK providers New builds for
// them run their export goroutines from then until Run returns: see
// "Telemetry" in the package documentation.) It returns an error for a bad
// name or option, when the default logger cannot be built from LOG_LEVEL and
// LOG_FORMAT, or when the OTEL_* variables name an exporter that does not
// exist.
func New(name string, opts ...Option) (*Service, error) {
	if err := discovery.ValidateServiceName(name); err != nil {
		return nil, fmt.Errorf("service: %w", err) // one rule for services and registries
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("service %q: nil option", name)
		}
		o(&cfg)
	}
	if cfg.listener == nil && cfg.addr == "" {
		return nil, fmt.Errorf("service %q: empty address", name)
	}
	if err := cfg.resolve(); err != nil {
		return nil, fmt.Errorf("service %q: %w", name, err)
	}
	for _, h := range cfg.hooks {
		if h.start == nil && h.stop == nil {
			return nil, fmt.Errorf("service %q: nil hook", name)
		}
	}
	for _, mw := range cfg.middleware {
		if mw == nil {
			return nil, fmt.Errorf("service %q: nil middleware", name)
		}
	}
	if err := cfg.validateTelemetry(); err != nil {
		return nil, fmt.Errorf("service %q: %w", name, err)
	}
	logger := cfg.logger
	if logger == nil {
		var err error
		if logger, err = NewLogger(); err != nil {
			return nil, err
		}
	}
	logger = withContextHandler(logger).With(slog.String("service", name))

	mon, err := health.New()
	if err != nil {
		return nil, fmt.Errorf("service %q: %w", name, err)
	}
	for _, c := range cfg.checks {
		if err := mon.Add(c.name, c.c, c.opts...); err != nil {
			return nil, fmt.Errorf("service %q: %w", name, err)
		}
	}

	s := &Service{name: name, cfg: cfg, logger: logger, mux: http.NewServeMux(), health: mon, after: time.After}
	if cfg.registry != nil {
		s.registration = newRegistration(cfg.registry)
		if err := mon.Add(RegistryCheck, s.registration, health.NonCritical()); err != nil {
			return nil, fmt.Errorf("service %q: %w", name, err)
		}
	}
	tel, err := newTelemetry(name, &s.cfg)
	if err != nil {
		return nil, fmt.Errorf("service %q: %w", name, err)
	}
	s.tel = tel
	s.Handle("GET "+LivePath, mon.LiveHandler())
	s.Handle("GET "+ReadyPath, mon.ReadyHandler())
	s.Handle("GET "+HealthPath, mon.DetailHandler())
	if cfg.adminAddr != "" {
		admin, err := adminMux(mon.DetailHandler(health.WithCheckErrors()), tel.metrics, cfg.metricsPath, cfg.pprof)
		if err != nil {
			_ = tel.shutdown(time.Second)
			return nil, fmt.Errorf("service %q: %w", name, err)
		}
		s.admin = Recover(logger)(muxErrors(admin))
	} else if tel.metrics != nil {
		s.metricsRoute = "GET " + cfg.metricsPath
		s.Handle(s.metricsRoute, tel.metrics)
	}
	s.handler = s.stack(s.routes())
	return s, nil
}

// validateTelemetry checks the options that only make sense together.
func (c *config) validateTelemetry() error {
	if c.pprof && c.adminAddr == "" {
		return errors.New("WithPprof needs WithAdminAddr: profiles are never served on the main listener")
	}
	if c.meterProvider != nil {
		if c.metricsPathSet && c.metricsPath != "" {
			return errors.New("WithMetricsPath needs the Service's own meter provider: " +
				"with WithMeterProvider, mount your Prometheus exporter's handler yourself")
		}
		c.metricsPath = "" // the Service has no registry to serve
	}
	if c.metricsPath != "" && !strings.HasPrefix(c.metricsPath, "/") {
		return fmt.Errorf("metrics path %q does not start with /", c.metricsPath)
	}
	return nil
}

// stack wraps h in the built-in middleware, outermost first: recovery, request
// ID, trace span (and HTTP metrics), access log, load shedding, request
// timeout, body limit, then the user's. The request ID, the deadline and the
// span are set together, with one copy of the request (see begin); the
// timeout's 503 is written inside the access log. The deadline is the smaller
// of the request timeout and the caller's budget in discovery.TimeoutHeader.
func (s *Service) stack(h http.Handler) http.Handler {
	for i := len(s.cfg.middleware) - 1; i >= 0; i-- {
		h = s.cfg.middleware[i](h)
	}
	h = BodyLimit(s.cfg.bodyLimit)(h)
	h = answerLate(0)(h) // the deadline may be the caller's budget, not ours: name neither
	if s.cfg.shed {
		h = s.shedding(h)
	}
	if !s.cfg.noAccessLog {
		h = accessLog(s.logger, s.isQuietRoute)(h)
	}
	h = s.begin(h)
	return Recover(s.logger)(h)
}

// isQuietRoute reports whether the access log logs route at Debug: the health
// probes and metrics scrapes, which come every few seconds.
func (s *Service) isQuietRoute(route string) bool {
	return strings.HasPrefix(route, "GET "+HealthPath) || s.metricsRoute != "" && route == s.metricsRoute
}

// Name returns the name the Service was made with.
func (s *Service) Name() string { return s.name }

// Logger returns the Service's logger, which carries a "service" attribute.
func (s *Service) Logger() *slog.Logger { return s.logger }

// Health returns the Service's health monitor: add checks that need objects made
// after [New], or read its state.
func (s *Service) Health() *health.Monitor { return s.health }

// Client returns the Service's client for calling other services by name,
// http://users/users/42: a [discovery.NewClient] over the Service's resolver
// ([WithResolver], by default the registry of [WithRegistry]), with the
// Service's tracer provider, meter provider and propagator, configured by
// [WithClientOptions]. Pass the incoming request's context to its calls so
// that its deadline travels downstream. Without a resolver or a registry,
// hosts are resolved as usual (DNS) and sent as they are.
// Every call returns the same client, safe for concurrent use.
func (s *Service) Client() *http.Client {
	s.clientOnce.Do(func() {
		r := s.cfg.resolver
		if r == nil && s.cfg.registry != nil {
			r = s.cfg.registry
		}
		// The Service's telemetry first, so that the user's options win.
		opts := append(s.clientTelemetry(), s.cfg.clientOpts...)
		s.client = discovery.NewClient(r, opts...)
	})
	return s.client
}

// Addr returns the address the Service listens on, or nil before [Service.Run]
// has bound it.
func (s *Service) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// Handle registers h for pattern on the Service's http.ServeMux (Go 1.22
// patterns: "GET /users/{id}"). Routes get the whole middleware stack. Where
// http.ServeMux panics on a bad or conflicting pattern, Handle records the error
// and [Service.Run] returns it before binding; a route added while the Service
// runs that fails is logged at Error instead.
func (s *Service) Handle(pattern string, h http.Handler) {
	err := s.handle(pattern, h)
	if err == nil {
		return
	}
	if s.running.Load() {
		s.logger.Error("route not added", slog.Any("error", err))
		return
	}
	s.mu.Lock()
	s.routeEr = append(s.routeEr, err)
	s.mu.Unlock()
}

// HandleFunc registers f for pattern, as [Service.Handle] does.
func (s *Service) HandleFunc(pattern string, f http.HandlerFunc) {
	if f == nil {
		s.Handle(pattern, nil)
		return
	}
	s.Handle(pattern, f)
}

func (s *Service) handle(pattern string, h http.Handler) (err error) {
	if h == nil {
		return fmt.Errorf("service %q: handle %q: nil handler", s.name, pattern)
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("service %q: handle %q: %v", s.name, pattern, v)
		}
	}()
	s.mux.Handle(pattern, routeRecorder(pattern, h))
	return nil
}

// routeRecorder hands the matched pattern to the access log through the
// recorder, which it reaches through any writers that user middleware wrapped
// around it, and with it the route's http.route for the request's metrics; it
// also names the request's span (see routeTelemetry.record). User middleware
// may have replaced the request, hiding r.Pattern from the middleware outside
// it.
func routeRecorder(pattern string, h http.Handler) http.Handler {
	rt := newRouteTelemetry(pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := findRecorder(w); rec != nil {
			rec.route, rec.rt, rec.unrouted = r.Pattern, rt, nil
		}
		rt.record(r)
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP serves r through the Service's middleware and routes, without the
// lifecycle: useful with httptest. Until [Service.Run] serves, /health/ready
// answers 503 (starting).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Run serves until ctx ends, then stops gracefully, and returns nil after a clean
// stop. It may be called once.
//
// Starting: Run binds the listener (an address in use fails at once), runs the
// OnStart hooks in order, marks the Service serving, and serves. Readiness is
// true from then on while every critical health check passes.
//
// With a registry ([WithRegistry]), Run registers the instance in the
// background once it serves and is ready, retrying while the registry is down.
//
// Stopping, when ctx ends: readiness turns false (503) and keep-alives are
// turned off, and deregistration from the registry starts, so that
// registries, load balancers and clients move away; Run waits the drain delay
// while still serving, and for the deregistration, which is bounded by the
// drain delay (at least 1 s); then http.Server.Shutdown waits for in-flight
// requests, within the shutdown timeout (connections still open after it are
// closed); then the OnStop hooks run in reverse order, within the stop
// timeout ([WithStopTimeout]). Run returns the errors of these steps joined.
//
// With an admin address ([WithAdminAddr]), Run binds it right after the main
// listener, with the same fail-fast rule, serves it while the main listener
// serves, and shuts it down after the OnStop hooks. Last of all, Run flushes
// and shuts down the telemetry providers it built from the OTEL_* environment
// variables (see [WithTracerProvider]), and then the Service's own meter
// provider; providers given as options are left to their owner. The admin
// listener and the flush share the last fifth of the stop timeout (and what
// the hooks left of the rest).
//
// So Run returns at the latest after the drain delay (at least 1 s with a
// registry), the shutdown timeout and the stop timeout, counted from the end
// of ctx: 25 s with the defaults, as long as the registry, the hooks and the
// exporters return when their contexts end.
//
// Signal handling belongs to main: pass a context from signal.NotifyContext.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("service %q: Run called more than once", s.name)
	}
	stopBy, err := s.run(ctx)
	if stopBy.IsZero() { // run failed before it served
		stopBy = time.Now().Add(s.cfg.stopTimeout)
	}
	if terr := s.tel.shutdown(time.Until(stopBy)); terr != nil {
		err = errors.Join(err, fmt.Errorf("service %q: telemetry shutdown: %w", s.name, terr))
	}
	if err != nil {
		return err // main logs it: handled once
	}
	s.logger.LogAttrs(context.Background(), slog.LevelInfo, "service stopped")
	return nil
}

// run is Run after its once-only check and before the telemetry shutdown,
// which must end by stopBy; stopBy is zero when run fails before it serves.
func (s *Service) run(ctx context.Context) (stopBy time.Time, _ error) {
	s.mu.Lock()
	routeErr := errors.Join(s.routeEr...)
	s.mu.Unlock()
	if routeErr != nil {
		if s.cfg.listener != nil {
			_ = s.cfg.listener.Close()
		}
		return time.Time{}, routeErr
	}

	ln, err := s.listen(ctx)
	if err != nil {
		return time.Time{}, err
	}
	addr := ln.Addr()
	s.addr.Store(&addr)
	var in discovery.Instance
	if s.registration != nil {
		if in, err = s.instance(addr); err != nil {
			_ = ln.Close()
			return time.Time{}, err
		}
	}
	var admin *adminServer
	if s.admin != nil {
		if admin, err = s.listenAdmin(ctx); err != nil {
			_ = ln.Close()
			return time.Time{}, err
		}
	}

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		// Requests carry Run's context values but not its cancellation: ending
		// ctx starts a graceful stop, it does not cut in-flight requests.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}

	started, err := s.start(ctx)
	if err != nil {
		_ = ln.Close()
		if admin != nil {
			_ = admin.ln.Close()
		}
		stopBy = time.Now().Add(s.cfg.stopTimeout)
		return stopBy, errors.Join(err, s.stop(started, stopBy))
	}

	s.health.SetState(health.StateServing)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if admin != nil {
		admin.serve(ctx)
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "service started",
		slog.String("addr", addr.String()), slog.String("version", s.cfg.version))

	// Register only now that the listener is bound, in the background: a
	// registry that is down must not stop the Service from serving.
	regCtx, stopRegistering := context.WithCancel(ctx)
	defer stopRegistering()
	registered := make(chan struct{})
	if s.registration != nil {
		go func() {
			defer close(registered)
			s.register(regCtx, in)
		}()
	} else {
		close(registered)
	}

	var errs []error
	select {
	case <-ctx.Done():
	case err := <-served: // the listener failed under us
		errs = append(errs, fmt.Errorf("service %q: serve: %w", s.name, err))
		served = nil
	}
	stopRegistering()
	<-registered
	errs = append(errs, s.shutdown(srv, served, in)...)
	stopBy = time.Now().Add(s.cfg.stopTimeout)
	errs = append(errs, s.stop(started, stopBy))
	if admin != nil {
		errs = append(errs, admin.shutdown(time.Until(stopBy))...)
	}
	return stopBy, errors.Join(errs...)
}

// shutdown stops srv without losing a request, in the order that achieves it:
// first stop attracting traffic (unready, no keep-alives, deregistering), then
// wait for the world to notice (the drain delay, still serving), then let the
// requests in flight finish. Deregistration runs during the drain delay and is
// bounded by it, or by deregisterFloor when that is longer, so that a registry
// that does not answer cannot stretch the stop. served is Serve's result, nil
// when Serve has returned already.
func (s *Service) shutdown(srv *http.Server, served <-chan error, in discovery.Instance) []error {
	var errs []error
	s.health.SetState(health.StateDraining)
	srv.SetKeepAlivesEnabled(false)
	var deregistered chan error
	if s.registration != nil {
		deregistered = make(chan error, 1)
		go func() { deregistered <- s.deregister(in, max(s.cfg.drainDelay, deregisterFloor)) }()
	}
	if served != nil && s.cfg.drainDelay > 0 {
		s.logger.LogAttrs(context.Background(), slog.LevelInfo, "service draining",
			slog.Duration("drain_delay", s.cfg.drainDelay))
		select {
		case <-s.after(s.cfg.drainDelay):
		case err := <-served:
			errs = append(errs, fmt.Errorf("service %q: serve: %w", s.name, err))
			served = nil
		}
	}
	if deregistered != nil {
		if err := <-deregistered; err != nil { // bounded by its own deadline
			errs = append(errs, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close() // cut what is still open after the timeout
		errs = append(errs, fmt.Errorf("service %q: shutdown: %w", s.name, err))
	}
	if served != nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("service %q: serve: %w", s.name, err))
		}
	}
	return errs
}

// listen returns the configured listener or binds the address.
func (s *Service) listen(ctx context.Context) (net.Listener, error) {
	if s.cfg.listener != nil {
		return s.cfg.listener, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("service %q: %w", s.name, err)
	}
	return ln, nil
}

// start runs the OnStart hooks in order and returns how many hooks (of
// either kind) came before the first that failed: the OnStop hooks among them
// are the ones to run.
func (s *Service) start(ctx context.Context) (int, error) {
	n := 0
	for i, h := range s.cfg.hooks {
		if h.start == nil {
			continue
		}
		n++
		if err := h.start(ctx); err != nil {
			return i, fmt.Errorf("service %q: start hook %d: %w", s.name, n, err)
		}
	}
	return len(s.cfg.hooks), nil
}

// stop runs the OnStop hooks among the first n hooks in reverse order, all of
// them whatever any returns, under one deadline: four fifths of the stop
// timeout before stopBy, so that what runs after them (the admin listener's
// shutdown, the telemetry flush) keeps the last fifth.
func (s *Service) stop(n int, stopBy time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), stopBy.Add(-s.cfg.stopTimeout/5))
	defer cancel()
	var errs []error
	k := 0
	for _, h := range s.cfg.hooks[:n] {
		if h.stop != nil {
			k++
		}
	}
	for i := n - 1; i >= 0; i-- {
		f := s.cfg.hooks[i].stop
		if f == nil {
			continue
		}
		if err := f(ctx); err != nil {
			errs = append(errs, fmt.Errorf("service %q: stop hook %d: %w", s.name, k, err))
		}
		k--
	}
	return errors.Join(errs...)
}
