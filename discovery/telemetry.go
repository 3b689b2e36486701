package discovery

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"weak"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/internal/semconvutil"
)

// ScopeName is the instrumentation scope of the client's spans and metrics:
// the name it asks the tracer and meter providers for.
const ScopeName = "github.com/pier-go/pier/discovery"

// Attribute keys of pier's own, on the client's spans and metrics.
const (
	// ServiceKey is the called service's name: pier.service.
	ServiceKey = attribute.Key("pier.service")
	// AttemptKey is an attempt's number within its request, from 1: pier.attempt.
	AttemptKey = attribute.Key("pier.attempt")
)

// WithTracerProvider sets where the client's spans go: one span of kind client
// per attempt, so that a retried request shows each try. The default is
// otel.GetTracerProvider() at the time of [NewClient]: the global provider,
// which records nothing until the program sets one. Do not also wrap the
// transport given to [WithTransport] in otelhttp, or every attempt is traced
// twice.
func WithTracerProvider(tp trace.TracerProvider) ClientOption {
	return func(c *clientConfig) { c.tracerProvider = tp }
}

// WithMeterProvider sets where the client's metrics go: the semantic
// conventions' http.client.request.duration and pier.client.* (see the
// package documentation, "Telemetry"). The default is otel.GetMeterProvider()
// at the time of [NewClient], the global provider.
func WithMeterProvider(mp metric.MeterProvider) ClientOption {
	return func(c *clientConfig) { c.meterProvider = mp }
}

// WithPropagator sets how the context of each attempt's span (and the
// caller's baggage) is written into the attempt's headers. The default is W3C
// Trace Context and Baggage, built by the client: the global propagator is not
// consulted, since a program that never set one would propagate nothing.
func WithPropagator(p propagation.TextMapPropagator) ClientOption {
	return func(c *clientConfig) { c.propagator = p }
}

// telemetry is a client's tracer, propagator and instruments, made once in
// NewClient.
type telemetry struct {
	tracer      trace.Tracer
	spanStart   []trace.SpanStartOption // of every attempt's span: its kind
	propagator  propagation.TextMapPropagator
	defaultProp bool // propagator is the default one, which injects only a valid span context or baggage

	duration    metric.Float64Histogram // http.client.request.duration, per attempt
	requests    metric.Int64Counter     // pier.client.requests, per request
	retries     metric.Int64Counter
	exhausted   metric.Int64Counter
	transitions metric.Int64Counter
	ejections   metric.Int64Counter
	ejected     metric.Int64ObservableGauge
	breaker     metric.Int64ObservableGauge
	meter       metric.Meter // for the gauges' callback
}

func newTelemetry(cfg *clientConfig) *telemetry {
	tp, mp, prop := cfg.tracerProvider, cfg.meterProvider, cfg.propagator
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	tel := &telemetry{
		tracer: tp.Tracer(ScopeName),
		// Only the kind: the attributes are set once the span is known to
		// record, so that a tracer that records nothing costs nothing more.
		spanStart:  []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)},
		propagator: prop,
	}
	if prop == nil {
		tel.propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
		tel.defaultProp = true
	}
	m := mp.Meter(ScopeName)
	tel.meter = m
	// An instrument the provider refuses comes back beside an error, which
	// has nowhere to go: a client cannot fail for metrics. The buckets are
	// the semantic conventions' advice, in seconds.
	tel.duration, _ = m.Float64Histogram("http.client.request.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of HTTP client requests: one per attempt."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10))
	tel.requests, _ = m.Int64Counter("pier.client.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests to a service, after their retries, by outcome."))
	tel.retries, _ = m.Int64Counter("pier.client.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Attempts made after a request's first: after a failure, or at once when the first could not connect (reason unsent)."))
	tel.exhausted, _ = m.Int64Counter("pier.client.retry_budget.exhausted", metric.WithUnit("{retry}"),
		metric.WithDescription("Retries not made because the service's retry budget was spent."))
	tel.transitions, _ = m.Int64Counter("pier.client.breaker.transitions", metric.WithUnit("{transition}"),
		metric.WithDescription("Changes of a service's circuit breaker, by the state entered."))
	tel.ejections, _ = m.Int64Counter("pier.client.ejections", metric.WithUnit("{ejection}"),
		metric.WithDescription("Instances taken out of rotation for failing in a row (outlier ejection)."))
	tel.ejected, _ = m.Int64ObservableGauge("pier.client.ejected", metric.WithUnit("{instance}"),
		metric.WithDescription("Instances of a service ejected now."))
	tel.breaker, _ = m.Int64ObservableGauge("pier.client.breaker.state", metric.WithUnit("1"),
		metric.WithDescription("State of a service's circuit breaker: 0 closed, 1 half-open, 2 open."))
	// A provider that gave no instrument at all gets no-op ones.
	if tel.duration == nil {
		tel.duration = noop.Float64Histogram{}
	}
	for _, c := range []*metric.Int64Counter{&tel.requests, &tel.retries, &tel.exhausted, &tel.transitions, &tel.ejections} {
		if *c == nil {
			*c = noop.Int64Counter{}
		}
	}
	for _, g := range []*metric.Int64ObservableGauge{&tel.ejected, &tel.breaker} {
		if *g == nil {
			*g = noop.Int64ObservableGauge{}
		}
	}
	return tel
}

// observe registers the callback of the client's gauges. The callback holds
// t only weakly, and the registration is undone once t is garbage, so that a
// client that is dropped (the client has no Close) leaves nothing in the
// meter provider but a callback that observes nothing until it is removed.
func (tel *telemetry) observe(t *clientTransport) {
	ref := weak.Make(t)
	ejected, breaker := tel.ejected, tel.breaker
	reg, err := tel.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		t := ref.Value()
		if t == nil {
			return nil
		}
		now := t.cfg.now()
		for _, s := range *t.services.Load() {
			o.ObserveInt64(ejected, int64(s.ejectedAt(now)), s.tel.service)
			if s.breaker != nil {
				o.ObserveInt64(breaker, breakerValue(s.breaker.State()), s.tel.service)
			}
		}
		return nil
	}, ejected, breaker)
	if err != nil || reg == nil {
		return
	}
	runtime.AddCleanup(t, func(r metric.Registration) { _ = r.Unregister() }, reg)
}

// breakerValue is the value of pier.client.breaker.state for s.
func breakerValue(s circuitbreaker.State) int64 {
	switch s {
	case circuitbreaker.HalfOpenState:
		return 1
	case circuitbreaker.OpenState:
		return 2
	}
	return 0
}

// serviceTelemetry is a service's attributes, made once when the client first
// calls it, so that recording allocates nothing for them.
type serviceTelemetry struct {
	name       attribute.KeyValue       // pier.service
	service    metric.MeasurementOption // the set {pier.service}
	onlyName   []metric.AddOption       // {pier.service}
	outcome    [2][]metric.AddOption    // {pier.service, outcome}: success, failure
	retry      [2][]metric.AddOption    // {pier.service, reason}: failure, unsent
	transition [3][]metric.AddOption    // {pier.service, state}, by circuitbreaker.State

	// durations holds the attribute sets of http.client.request.duration
	// seen so far: few (a method, a status, a protocol), so cached rather than
	// built on every attempt. A map replaced on write, read without a lock.
	durations atomic.Pointer[map[durationKey][]metric.RecordOption]
}

// durationKey is what varies between the attribute sets of a service's
// http.client.request.duration.
type durationKey struct {
	method, scheme, errorType, protocol string
	port, status                        int
}

// maxDurationSets bounds the attribute sets a service caches; past it, sets are
// built on each use.
const maxDurationSets = 64

// init makes the attributes of the service name.
func (st *serviceTelemetry) init(name string) {
	kv := ServiceKey.String(name)
	with := func(k, v string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv, attribute.String(k, v)))}
	}
	st.name, st.service = kv, metric.WithAttributeSet(attribute.NewSet(kv))
	st.onlyName = []metric.AddOption{st.service}
	st.outcome = [2][]metric.AddOption{with("outcome", "success"), with("outcome", "failure")}
	st.retry = [2][]metric.AddOption{with("reason", "failure"), with("reason", "unsent")}
	for _, s := range []circuitbreaker.State{circuitbreaker.ClosedState, circuitbreaker.OpenState, circuitbreaker.HalfOpenState} {
		st.transition[s] = with("state", s.String())
	}
	st.durations.Store(&map[durationKey][]metric.RecordOption{})
}

// durationOptions returns the cached options of k, or nil.
func (st *serviceTelemetry) durationOptions(k durationKey) []metric.RecordOption {
	return (*st.durations.Load())[k]
}

// cacheDuration keeps opts as the options of k, unless the cache is full. Two
// attempts that add at once may lose one's entry, to be added again later.
func (st *serviceTelemetry) cacheDuration(k durationKey, opts []metric.RecordOption) {
	old := *st.durations.Load()
	if len(old) >= maxDurationSets {
		return
	}
	next := make(map[durationKey][]metric.RecordOption, len(old)+1)
	maps.Copy(next, old)
	next[k] = opts
	st.durations.Store(&next)
}

// startAttempt starts the span of an attempt. When the tracer records nothing
// and there is no trace to continue, it returns ctx itself, so that the
// attempt carries nothing it does not need.
func (tel *telemetry) startAttempt(ctx context.Context, method string) (context.Context, trace.Span) {
	actx, span := tel.tracer.Start(ctx, semconvutil.SpanName(method, ""), tel.spanStart...)
	if !span.IsRecording() && !span.SpanContext().IsValid() {
		return ctx, span
	}
	return actx, span
}

// describe sets the attributes of a recording attempt span: out is the request
// as sent, to host:port.
func describe(span trace.Span, out *http.Request, host, port attribute.KeyValue, svc *serviceTelemetry, attempt int) {
	attrs := make([]attribute.KeyValue, 0, 8)
	method, original := semconvutil.MethodAttrs(out.Method)
	attrs = append(attrs, method)
	if original.Valid() {
		attrs = append(attrs, original)
	}
	attrs = append(attrs, host, port, semconv.URLFull(fullURL(out.URL)))
	if svc != nil {
		attrs = append(attrs, svc.name, AttemptKey.Int(attempt))
	}
	span.SetAttributes(attrs...)
}

// inject writes ctx's span context and baggage into out's headers, copying
// them first unless copied says they are out's own already: the caller's
// header map is never written. With the default propagator it does nothing,
// and copies nothing, when there is nothing to send.
func (tel *telemetry) inject(ctx context.Context, out *http.Request, copied bool) {
	if !tel.propagates(ctx) {
		return
	}
	if !copied {
		out.Header = cloneHeader(out.Header, 2)
	}
	tel.propagator.Inject(ctx, semconvutil.HeaderCarrier(out.Header))
}

// propagates reports whether the propagator may write anything for ctx.
func (tel *telemetry) propagates(ctx context.Context) bool {
	return !tel.defaultProp || trace.SpanContextFromContext(ctx).IsValid() || baggage.FromContext(ctx).Len() > 0
}

// cloneHeader returns a copy of h with room for extra more keys.
func cloneHeader(h http.Header, extra int) http.Header {
	if h == nil {
		return make(http.Header, extra)
	}
	return h.Clone()
}

// finish ends the telemetry of an attempt sent as out: it records its
// duration d, under origin (the URL the caller addressed: the service's name,
// never an instance's address, so that the histogram's series stay few), and
// ends the span, or hands the span to the response's body, which ends it
// when closed or read to the end. svc is nil for a request to an address.
func (tel *telemetry) finish(ctx context.Context, span trace.Span, svc *serviceTelemetry, origin *url.URL,
	out *http.Request, resp *http.Response, err error, d time.Duration) *http.Response {
	if tel.duration.Enabled(ctx) {
		tel.record(ctx, svc, origin, out.Method, resp, err, d)
	}
	if !span.IsRecording() {
		span.End()
		return resp
	}
	if err != nil || resp == nil {
		if err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		return resp
	}
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, semconv.HTTPResponseStatusCode(resp.StatusCode))
	if v := protocolVersion(resp); v != "" {
		attrs = append(attrs, semconv.NetworkProtocolVersion(v))
	}
	// The semantic conventions make every 4xx and 5xx an error on a client
	// span, whatever pier's classifier says about retrying it.
	if resp.StatusCode >= 400 {
		attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	span.SetAttributes(attrs...)
	if resp.Body == nil || resp.Body == http.NoBody {
		span.End()
		return resp
	}
	resp.Body = newSpanBody(resp.Body, span)
	return resp
}

// record records http.client.request.duration for one attempt: under the
// service's cached attribute set when svc is not nil.
func (tel *telemetry) record(ctx context.Context, svc *serviceTelemetry, origin *url.URL, method string,
	resp *http.Response, err error, d time.Duration) {
	m, _ := semconvutil.MethodAttrs(method)
	host, port := hostPort(origin)
	k := durationKey{method: m.Value.AsString(), scheme: origin.Scheme, port: port}
	if k.scheme == "" {
		k.scheme = "http"
	}
	switch {
	case err != nil:
		k.errorType = errorType(err)
	case resp != nil:
		k.status, k.protocol = resp.StatusCode, protocolVersion(resp)
		if resp.StatusCode >= 400 {
			k.errorType = strconv.Itoa(resp.StatusCode)
		}
	}
	if svc != nil {
		if opts := svc.durationOptions(k); opts != nil {
			tel.duration.Record(ctx, d.Seconds(), opts...)
			return
		}
	}
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs, m, semconv.ServerAddress(host), semconv.ServerPort(port), semconv.URLScheme(k.scheme))
	if svc != nil {
		attrs = append(attrs, svc.name)
	}
	if k.status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(k.status))
	}
	if k.errorType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(k.errorType))
	}
	if k.protocol != "" {
		attrs = append(attrs, semconv.NetworkProtocolVersion(k.protocol))
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
	if svc != nil {
		svc.cacheDuration(k, opts)
	}
	tel.duration.Record(ctx, d.Seconds(), opts...)
}

// hostPort returns server.address and server.port for u: its host, and its
// port or the scheme's.
func hostPort(u *url.URL) (string, int) {
	host, port := u.Hostname(), u.Port()
	if port != "" {
		if p, err := strconv.Atoi(port); err == nil {
			return host, p
		}
	}
	if u.Scheme == "https" {
		return host, 443
	}
	return host, 80
}

// addrAttrs returns server.address and server.port for an instance address.
func addrAttrs(addr string) (host, port attribute.KeyValue) {
	h, p := semconvutil.SplitHostPort(addr)
	if p == 0 {
		return semconv.ServerAddress(h), attribute.KeyValue{}
	}
	return semconv.ServerAddress(h), semconv.ServerPort(p)
}

// fullURL returns u for url.full: without credentials, or the values of the
// query parameters that carry signatures, as the semantic conventions ask.
func fullURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.UserPassword("REDACTED", "REDACTED")
	}
	if c.RawQuery != "" {
		var q url.Values
		for _, k := range [...]string{"AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"} {
			if !strings.Contains(c.RawQuery, k+"=") {
				continue
			}
			if q == nil {
				q = c.Query()
			}
			if _, ok := q[k]; ok {
				q[k] = []string{"REDACTED"}
			}
		}
		if q != nil {
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}

// protocolVersion returns network.protocol.version for resp: "1.1", "2".
func protocolVersion(resp *http.Response) string {
	if resp.ProtoMajor == 0 {
		return ""
	}
	return semconvutil.ProtocolVersion(resp.ProtoMajor, resp.ProtoMinor)
}

// errorType returns error.type for an attempt that failed with err: a few
// names for the common causes, else the error's Go type, which keeps the
// values few.
func errorType(err error) string {
	switch {
	case errors.Is(err, timeout.ErrExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection_closed"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return "connect_failed"
	}
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" || t.Name() == "" {
		return semconv.ErrorTypeOther.Value.AsString()
	}
	return t.PkgPath() + "." + t.Name()
}

// spanBody ends its attempt's span when it is closed or read to the end.
type spanBody struct {
	io.ReadCloser
	span  trace.Span
	ended atomic.Bool
}

// spanBodyWriter is a spanBody over a writable body (101 Switching Protocols),
// which must stay writable.
type spanBodyWriter struct {
	*spanBody
	io.Writer
}

func newSpanBody(body io.ReadCloser, span trace.Span) io.ReadCloser {
	b := &spanBody{ReadCloser: body, span: span}
	if w, ok := body.(io.Writer); ok {
		return spanBodyWriter{b, w}
	}
	return b
}

// Read reads the body; at its end the span ends, and a failure to read it
// makes the span an error.
func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.end()
	case err != nil && !b.ended.Load():
		b.span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		b.span.SetStatus(codes.Error, err.Error())
	}
	return n, err
}

// Close ends the span, then closes the body.
func (b *spanBody) Close() error {
	b.end()
	return b.ReadCloser.Close()
}

func (b *spanBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}
