package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/internal/requestid"
	"github.com/pier-go/pier/internal/semconvutil"
	"github.com/pier-go/pier/resilience"
)

// DefaultMetricsPath is the path the Service serves Prometheus metrics at
// ([WithMetricsPath]).
const DefaultMetricsPath = "/metrics"

// scopeName is the instrumentation scope of the Service's server spans and
// instruments.
const scopeName = "github.com/pier-go/pier/service"

// shedMetric counts the requests load shedding rejected: in Prometheus,
// pier_server_requests_shed_total.
const shedMetric = "pier.server.requests.shed"

// WithTracerProvider sets the tracer provider of the Service's server spans
// and of the spans of [Service.Client]. The default (and nil) is, when the
// OTEL_* environment variables configure a traces exporter (see "Telemetry" in
// the package documentation), an SDK provider the Service builds from them and
// shuts down when Run returns; otherwise otel.GetTracerProvider(), the global,
// which records nothing unless the program has set one.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// WithMeterProvider sets the meter provider of the Service's HTTP server
// metrics, its shed counter and the metrics of [Service.Client]. The default
// (and nil) is a provider the Service builds for itself, which feeds its
// Prometheus endpoint ([WithMetricsPath]) and, when the OTEL_* environment
// variables configure a metrics exporter, that exporter too.
//
// With a provider of yours the Service serves no metrics endpoint: add a
// Prometheus reader (go.opentelemetry.io/otel/exporters/prometheus) to your
// provider and mount its registry's promhttp handler yourself, with
// [Service.Handle]. Giving WithMetricsPath a non-empty path as well is an
// error.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithPropagator sets how trace context travels in headers: extracted from
// incoming requests and injected by [Service.Client] into outgoing ones. The
// default (and nil) is W3C Trace Context and W3C Baggage (traceparent,
// tracestate, baggage), built by the Service; the global
// otel.GetTextMapPropagator() is never consulted.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

// WithMetricsPath sets the path of the Prometheus text endpoint, served on
// the main listener or, with [WithAdminAddr], on the admin listener. The
// default is [DefaultMetricsPath], "/metrics"; "" keeps it, and
// [WithoutMetricsEndpoint] turns the endpoint off. The path must start with
// "/". Requests for it are not traced, not measured and logged at Debug, like
// the health probes.
func WithMetricsPath(path string) Option {
	return func(c *config) { c.metricsPath, c.metricsPathSet = path, path != "" }
}

// WithoutMetricsEndpoint turns the Prometheus endpoint off, and with it the
// meter provider the Service builds for it: unless OTEL_METRICS_EXPORTER asks
// for one, or [WithMeterProvider] gives one, the Service then records no HTTP
// metrics (nothing would read them), and [Service.Client] none either. The
// default is
// [DefaultMetricsPath] on the main listener, or on the admin listener with
// [WithAdminAddr].
func WithoutMetricsEndpoint() Option {
	return func(c *config) { c.noMetrics = true }
}

// WithAdminAddr makes the Service serve its metrics endpoint, the full health
// report at GET /health, each check's error included (see
// [health.WithCheckErrors]; the public /health shows names and statuses alone),
// and, with [WithPprof], the profiling endpoints, on a second listener at addr
// (such as "127.0.0.1:9090" or ":9090") that is kept off the public port. Run binds it
// next to the main listener, failing at once when it is taken, and shuts it
// down when everything else has stopped, so metrics can be scraped while the
// Service drains. The default is "": no admin listener, and the metrics
// endpoint is served on the main one.
func WithAdminAddr(addr string) Option {
	return func(c *config) { c.adminAddr = addr }
}

// WithPprof serves the runtime profiles under /debug/pprof/ on the admin
// listener, as net/http/pprof does (go tool pprof works against it), without
// registering anything on http.DefaultServeMux. It requires [WithAdminAddr]:
// profiles are never served on the public listener, and [New] returns an
// error for WithPprof alone. The default is off.
func WithPprof() Option {
	return func(c *config) { c.pprof = true }
}

// WithLoadShedding adds [resilience.Shed], configured by opts, to the built-in
// stack just inside the access log, so shed requests are logged (with their
// 503) but cost nothing more. The health endpoints and the metrics endpoint are
// never shed: an overloaded instance must still answer its probes. Each shed
// request is counted in the pier.server.requests.shed counter (Prometheus:
// pier_server_requests_shed_total) through [resilience.WithOnShed]; hooks of
// your own given with WithOnShed in opts run after it. The default is off.
func WithLoadShedding(opts ...resilience.ShedOption) Option {
	return func(c *config) {
		c.shed = true
		c.shedOpts = append(c.shedOpts, opts...)
	}
}

// telemetry is what the Service traces and measures with, resolved by New.
type telemetry struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	metrics        http.Handler                  // the Prometheus endpoint; nil when off
	shutdowns      []func(context.Context) error // of the SDK providers the Service built
	shed           metric.Int64Counter

	tracer    trace.Tracer
	startOpts []trace.SpanStartOption
	duration  httpconv.ServerRequestDuration
	measure   bool     // something reads the measurements
	sets      sync.Map // metricKey -> []metric.RecordOption: the attributes of http.server.request.duration
}

// newTelemetry resolves the Service's providers from cfg and the OTEL_*
// environment variables. On error, it has shut down whatever it built.
func newTelemetry(name string, cfg *config) (_ *telemetry, err error) {
	t := &telemetry{
		tracerProvider: cfg.tracerProvider,
		meterProvider:  cfg.meterProvider,
		propagator:     cfg.propagator,
	}
	defer func() {
		if err != nil {
			_ = t.shutdown(time.Second)
		}
	}()
	if t.propagator == nil {
		t.propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	traces := t.tracerProvider == nil && exporterConfigured("TRACES")
	envMetrics := cfg.meterProvider == nil && exporterConfigured("METRICS")
	ownMetrics := cfg.meterProvider == nil && (cfg.metricsPath != "" || envMetrics)

	var res *resource.Resource
	if traces || ownMetrics {
		attrs := []attribute.KeyValue{semconv.ServiceName(name)}
		if cfg.version != "" {
			attrs = append(attrs, semconv.ServiceVersion(cfg.version))
		}
		// The Service's name wins over OTEL_SERVICE_NAME: it is the name
		// callers and registries know it by.
		if res, err = resource.Merge(resource.Default(), resource.NewSchemaless(attrs...)); err != nil {
			return nil, fmt.Errorf("telemetry resource: %w", err)
		}
	}

	ctx := context.Background() // the exporters connect lazily: nothing here blocks
	switch {
	case t.tracerProvider != nil:
	case traces:
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("traces exporter from OTEL_* environment: %w", err)
		}
		// The sampler is the SDK's default, which OTEL_TRACES_SAMPLER and
		// OTEL_TRACES_SAMPLER_ARG configure.
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		t.tracerProvider = tp
		t.shutdowns = append(t.shutdowns, tp.Shutdown)
	default:
		t.tracerProvider = otel.GetTracerProvider()
	}

	t.measure = true
	switch {
	case t.meterProvider != nil:
	case !ownMetrics:
		t.meterProvider = noop.NewMeterProvider() // nothing would read the measurements
		t.measure = false
	default:
		opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
		if cfg.metricsPath != "" {
			reg := prometheus.NewRegistry() // the Service's own, never the default registerer
			exp, err := otelprom.New(otelprom.WithRegisterer(reg))
			if err != nil {
				return nil, fmt.Errorf("prometheus exporter: %w", err)
			}
			if err := errors.Join(
				reg.Register(collectors.NewGoCollector()),
				reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
			); err != nil {
				return nil, fmt.Errorf("prometheus collectors: %w", err)
			}
			opts = append(opts, sdkmetric.WithReader(exp))
			t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		}
		if envMetrics {
			r, err := autoexport.NewMetricReader(ctx)
			if err != nil {
				return nil, fmt.Errorf("metrics exporter from OTEL_* environment: %w", err)
			}
			opts = append(opts, sdkmetric.WithReader(r))
		}
		mp := sdkmetric.NewMeterProvider(opts...)
		t.meterProvider = mp
		t.shutdowns = append(t.shutdowns, mp.Shutdown)
	}

	t.tracer = t.tracerProvider.Tracer(scopeName)
	t.startOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	meter := t.meterProvider.Meter(scopeName)
	// The buckets the HTTP semantic conventions advise, as otelhttp uses.
	t.duration, err = httpconv.NewServerRequestDuration(meter, metric.WithExplicitBucketBoundaries(
		0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10))
	if err != nil {
		return nil, fmt.Errorf("metric %s: %w", t.duration.Name(), err)
	}
	t.shed, err = meter.Int64Counter(shedMetric,
		metric.WithUnit("{request}"),
		metric.WithDescription("Requests rejected by load shedding, answered 503 without running the handler."))
	if err != nil {
		return nil, fmt.Errorf("metric %s: %w", shedMetric, err)
	}
	return t, nil
}

// exporterConfigured reports whether the OTEL_* environment variables ask for
// an exporter of signal ("TRACES" or "METRICS"): OTEL_<signal>_EXPORTER is set
// to anything but "none", or, when it is unset, an OTLP endpoint is set
// (autoexport's default exporter is OTLP). OTEL_SDK_DISABLED=true turns both
// off. OTEL_METRICS_EXPORTER=prometheus means the Service's own endpoint
// ([WithMetricsPath]), not a second HTTP server.
func exporterConfigured(signal string) bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch os.Getenv("OTEL_" + signal + "_EXPORTER") {
	case "none":
		return false
	case "prometheus":
		return signal != "METRICS"
	case "":
		return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
			os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
	}
	return true
}

// shutdown flushes and stops the providers the Service built, within timeout,
// and returns their errors joined.
func (t *telemetry) shutdown(timeout time.Duration) error {
	if len(t.shutdowns) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for _, f := range t.shutdowns {
		errs = append(errs, f(ctx))
	}
	t.shutdowns = nil
	return errors.Join(errs...)
}

// isProbe reports whether path is a health endpoint or the metrics endpoint
// of the main listener: requests that get no span and no HTTP metrics, are
// never shed, and are logged at Debug.
func (s *Service) isProbe(path string) bool {
	switch path {
	case LivePath, ReadyPath, HealthPath:
		return true
	}
	return s.metricsRoute != "" && path == s.cfg.metricsPath
}

// begin returns the Service's request middleware, inside Recover: it sets the
// request ID and the deadline (as RequestID and Timeout do), then, for all but the
// probes, extracts the caller's trace context with the Service's propagator,
// starts the server span and, when the handler is done, ends it and records
// http.server.request.duration. All of it goes into one copy of the request.
//
// This is what otelhttp.NewMiddleware does, with its span names, semantic
// conventions and duration histogram, at a fraction of its cost: otelhttp
// computes the span's attributes whether or not the span records and builds a
// new attribute set for the metrics on every request, about 4 us and 30
// allocations a request on the machines of docs/benchmarks.md, more than the
// whole rest of the stack. Here attributes are only computed for spans that
// record, and the metric's attribute sets are built once per route, method,
// status and protocol, then reused.
func (s *Service) begin(next http.Handler) http.Handler {
	d := s.cfg.requestTimeout
	tel := s.tel
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec, _ := record(w)
		ctx := withRequestID(w, r)
		ctx, cancel := withDeadline(ctx, r.Header, d, true)
		if cancel != nil {
			defer cancel()
			bodyDeadline(ctx, w, r)
		}
		if s.isProbe(r.URL.Path) {
			r2 := r.WithContext(ctx)
			next.ServeHTTP(rec, r2)
			r.Pattern = r2.Pattern
			return
		}
		ctx = tel.propagator.Extract(ctx, semconvutil.HeaderCarrier(r.Header))
		ctx, span := tel.tracer.Start(ctx, semconvutil.SpanName(r.Method, ""), tel.startOpts...)
		if sc := span.SpanContext(); sc.HasTraceID() {
			requestid.SetTraceID(ctx, sc.TraceID()) // for the problems written for r
		}
		if span.IsRecording() {
			span.SetAttributes(requestAttrs(r)...)
		}
		r2 := r.WithContext(ctx)
		returned := false
		defer func() {
			if !returned { // panicking: Recover, outside, answers 500
				tel.finish(ctx, span, rec, r2, start, true)
			}
		}()
		next.ServeHTTP(rec, r2)
		returned = true
		r.Pattern = r2.Pattern
		tel.finish(ctx, span, rec, r2, start, false)
	})
}

// finish ends the request's span and records its duration. A panicking
// request is marked as failed with status 500 (unless its response had
// begun), and its span's identifiers are handed to Recover, whose request has
// no span in its context, so that the 500 problem and the panic's log line
// carry the trace ID.
func (t *telemetry) finish(ctx context.Context, span trace.Span, rec *recorder, r *http.Request, start time.Time, panicked bool) {
	status := rec.status
	switch {
	case panicked && !rec.wroteHeader:
		status = http.StatusInternalServerError
	case status == 0:
		status = http.StatusOK // net/http's answer to a handler that wrote nothing
	}
	if panicked {
		if sc := span.SpanContext(); sc.IsValid() {
			rec.traceID, rec.spanID = sc.TraceID(), sc.SpanID()
		}
	}
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, "")
		}
		if panicked {
			span.SetStatus(codes.Error, "panic")
		}
	}
	span.End()
	if t.measure {
		route := ""
		if rec.rt != nil {
			route = rec.rt.route
		} else if r.Pattern != "" {
			route = patternRoute(r.Pattern)
		}
		t.duration.Inst().Record(ctx, time.Since(start).Seconds(), t.attrSet(metricKey{
			method: semconvutil.Method(r.Method), route: route, status: status,
			major: r.ProtoMajor, minor: r.ProtoMinor, tls: r.TLS != nil,
		})...)
	}
}

// metricKey is what the attributes of http.server.request.duration are made
// from. Every field is bounded: methods outside the standard ones are
// "_OTHER", routes are the Service's patterns, and net/http allows statuses
// from 100 to 999 and protocol versions 1.0, 1.1 and 2.
type metricKey struct {
	method       string
	route        string
	status       int
	major, minor int
	tls          bool
}

// attrSet returns the attributes of k as record options, building them on
// first use. They are a slice so that recording allocates nothing.
func (t *telemetry) attrSet(k metricKey) []metric.RecordOption {
	if v, ok := t.sets.Load(k); ok {
		return v.([]metric.RecordOption)
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs,
		semconv.HTTPRequestMethodKey.String(k.method),
		semconv.URLScheme(scheme(k.tls)),
		semconv.HTTPResponseStatusCode(k.status),
		semconv.NetworkProtocolVersion(semconvutil.ProtocolVersion(k.major, k.minor)),
	)
	if k.route != "" {
		attrs = append(attrs, semconv.HTTPRoute(k.route))
	}
	if k.status >= 500 {
		attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(k.status)))
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
	v, _ := t.sets.LoadOrStore(k, opts)
	return v.([]metric.RecordOption)
}

// requestAttrs returns the attributes of a recording server span that the
// request tells, per the HTTP semantic conventions. url.query is left out: it
// may carry secrets.
func requestAttrs(r *http.Request) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 10)
	method, original := semconvutil.MethodAttrs(r.Method)
	attrs = append(attrs, method)
	if original.Valid() {
		attrs = append(attrs, original)
	}
	attrs = append(attrs,
		semconv.URLScheme(scheme(r.TLS != nil)),
		semconv.URLPath(r.URL.Path),
		semconv.NetworkProtocolVersion(semconvutil.ProtocolVersion(r.ProtoMajor, r.ProtoMinor)),
	)
	if host, port := semconvutil.SplitHostPort(r.Host); host != "" {
		attrs = append(attrs, semconv.ServerAddress(host))
		if port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	if peer, port := semconvutil.SplitHostPort(r.RemoteAddr); peer != "" {
		// The connection's peer: X-Forwarded-For is any client's to write.
		attrs = append(attrs, semconv.ClientAddress(peer), semconv.NetworkPeerAddress(peer))
		if port > 0 {
			attrs = append(attrs, semconv.NetworkPeerPort(port))
		}
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	return attrs
}

// shedding wraps h in resilience.Shed, counting sheds, except for the probes.
func (s *Service) shedding(h http.Handler) http.Handler {
	count := func(r *http.Request) { s.tel.shed.Add(r.Context(), 1) }
	opts := append([]resilience.ShedOption{resilience.WithOnShed(count)}, s.cfg.shedOpts...)
	shed := resilience.Shed(opts...)(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.isProbe(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		shed.ServeHTTP(w, r)
	})
}

// routeTelemetry is what routeRecorder precomputes for one pattern.
type routeTelemetry struct {
	method string             // the pattern's method, "" when it has none
	name   string             // the span name for a request of that method
	route  string             // http.route: the pattern without method and host
	attr   attribute.KeyValue // http.route
}

func newRouteTelemetry(pattern string) *routeTelemetry {
	method := ""
	if i := strings.IndexAny(pattern, " \t"); i >= 0 && i < strings.IndexByte(pattern, '/') {
		method = pattern[:i]
	}
	route := patternRoute(pattern)
	return &routeTelemetry{method: method, name: semconvutil.SpanName(method, route), route: route, attr: semconv.HTTPRoute(route)}
}

// patternRoute is the path template of a ServeMux pattern: "GET
// example.com/users/{id}" is "/users/{id}".
func patternRoute(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return ""
}

// record names r's span after the route, "GET /users/{id}", and gives it
// http.route. Until then the span is named by the method alone, which is what
// a request that matches no route (404, 405) keeps: a raw path would make a
// span name per URL.
func (rt *routeTelemetry) record(r *http.Request) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	name := rt.name
	if r.Method != rt.method {
		name = semconvutil.SpanName(r.Method, rt.route)
	}
	span.SetName(name)
	span.SetAttributes(rt.attr)
}

func scheme(tls bool) string {
	if tls {
		return "https"
	}
	return "http"
}
