package discovery

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/resilience"
)

// TimeoutHeader carries the caller's remaining time budget to the next hop, in
// whole milliseconds, as Envoy's x-envoy-expected-rq-timeout-ms does: a relative
// budget, immune to clock skew between machines. The client sets it on every
// attempt whose context has a deadline; a pier Service adopts the smaller of
// its own request timeout and this budget.
const TimeoutHeader = "X-Pier-Timeout-Ms"

// ClientOption configures [NewClient].
type ClientOption func(*clientConfig)

type clientConfig struct {
	balancer        Balancer
	retries         int
	backoffBase     time.Duration
	backoffMax      time.Duration
	budgetRate      float64
	budgetMin       uint
	ejection        Ejection
	breaker         circuitbreaker.Builder[*http.Response]
	noBreaker       bool
	attemptTimeout  time.Duration
	deadlineFloor   time.Duration
	policies        []failsafe.Policy[*http.Response]
	base            http.RoundTripper
	idempotencyKeys bool
	now             func() time.Time
	tracerProvider  trace.TracerProvider
	meterProvider   metric.MeterProvider
	propagator      propagation.TextMapPropagator
	err             error // invalid options, joined
}

// invalid records an invalid option.
func (c *clientConfig) invalid(format string, args ...any) {
	c.err = errors.Join(c.err, fmt.Errorf("discovery: "+format, args...))
}

// Defaults of [NewClient]; each has an option.
const (
	// DefaultRetries is how many times an idempotent request is retried after
	// its first attempt: 2, as gRPC's and Envoy's typical policies ([WithRetries]).
	DefaultRetries = 2
	// DefaultBudgetRate is the share of requests that may be retries at once:
	// 20%, as Envoy's retry budget and Finagle's ([WithRetryBudget]).
	DefaultBudgetRate = 0.2
	// DefaultBudgetMin is how many retries may run at once whatever the rate, so
	// that a quiet service can still retry ([WithRetryBudget]).
	DefaultBudgetMin = 3
	// DefaultDeadlineFloor is the least time budget an attempt starts with: with
	// less, the request fails at once with context.DeadlineExceeded rather than
	// send work downstream that cannot finish ([WithDeadlineFloor]).
	DefaultDeadlineFloor = 5 * time.Millisecond
	// DefaultIdleConnsPerHost is how many idle connections the default transport
	// keeps per instance: enough for the concurrency one client sends to one
	// instance, where net/http's default of 2 would reconnect under any load.
	DefaultIdleConnsPerHost = 256
)

// WithBalancer sets how an instance is chosen for each attempt. The default is
// [P2C].
func WithBalancer(b Balancer) ClientOption {
	return func(c *clientConfig) { c.balancer = b }
}

// WithRetries sets how many times an idempotent request (GET, HEAD, OPTIONS,
// TRACE, PUT, DELETE, or any request with an Idempotency-Key) is retried, each
// time on another instance when there is one. The default is [DefaultRetries];
// 0 means the default, and a negative n is invalid (see [NewClient]). Turn
// retries off with [WithoutRetries].
func WithRetries(n int) ClientOption {
	return func(c *clientConfig) {
		switch {
		case n < 0:
			c.invalid("WithRetries(%d): negative", n)
		case n > 0:
			c.retries = n
		}
	}
}

// WithoutRetries turns retries off: every request is sent once (a request
// whose connection could not be made still moves to another instance, since
// it was never sent). The default is [DefaultRetries] retries.
func WithoutRetries() ClientOption {
	return func(c *clientConfig) { c.retries = 0 }
}

// WithRetryBackoff sets the backoff between retries: a random wait up to base
// doubled per retry, capped at max ("full jitter", [resilience.RetryDelay]).
// A Retry-After header of up to 10 s on the failed answer is honoured instead;
// a longer one ends the retries. The defaults are resilience's, 25 ms and 1 s;
// 0 means the default, a max below base means base, and a negative duration
// is invalid (see [NewClient]).
func WithRetryBackoff(base, max time.Duration) ClientOption {
	return func(c *clientConfig) {
		if base < 0 || max < 0 {
			c.invalid("WithRetryBackoff(%v, %v): negative", base, max)
			return
		}
		c.backoffBase, c.backoffMax = base, max
	}
}

// WithRetryBudget bounds retries per service (a failsafe budget from
// [resilience.NewBudgetBuilder]): at most rate (0 to 1) of the requests in
// flight may be retries, and at least minConcurrent retries may always run. A
// retry past the budget is not made: the request fails with
// budget.ErrExceeded. The defaults are [DefaultBudgetRate] and
// [DefaultBudgetMin]; 0 means the default, and a rate below 0 or above 1 is
// invalid (see [NewClient]).
func WithRetryBudget(rate float64, minConcurrent uint) ClientOption {
	return func(c *clientConfig) {
		if !(rate >= 0 && rate <= 1) { // NaN too
			c.invalid("WithRetryBudget(%v, %d): rate outside [0, 1]", rate, minConcurrent)
			return
		}
		if rate > 0 {
			c.budgetRate = rate
		}
		if minConcurrent > 0 {
			c.budgetMin = minConcurrent
		}
	}
}

// WithOutlierEjection sets when an instance is taken out of rotation for a
// time after failing; see [Ejection] for the defaults (5 failures in a row,
// 30 s times the number of ejections, at most 50% of instances).
func WithOutlierEjection(e Ejection) ClientOption {
	return func(c *clientConfig) { c.ejection = e }
}

// WithCircuitBreaker sets the builder of the circuit breaker each service
// gets, above the per-instance ejection: when most of a service's requests
// fail, requests fail at once (with circuitbreaker.ErrOpen) until trial
// requests succeed again. It counts requests, after their retries, not
// attempts: a request that succeeded on another instance is a success, so an
// instance that fails among healthy ones is ejection's business and never
// opens it; a request that failed and whose retry the retry budget refused is
// a failure. Start from [resilience.NewCircuitBreakerBuilder] and
// tune it with failsafe's builder methods:
//
//	discovery.WithCircuitBreaker(resilience.NewCircuitBreakerBuilder().WithDelay(10 * time.Second))
//
// The client builds one breaker per service from b, when it first calls that
// service, so b must not be changed or used after it is passed. For its
// breaker metrics the client sets b's OnOpen, OnHalfOpen and OnClose
// listeners, replacing any set there; OnStateChanged is left for hooks of
// your own. The default is resilience.NewCircuitBreakerBuilder(); a nil b is
// invalid (see [NewClient]).
func WithCircuitBreaker(b circuitbreaker.Builder[*http.Response]) ClientOption {
	return func(c *clientConfig) {
		if b == nil {
			c.invalid("WithCircuitBreaker(nil)")
			return
		}
		c.breaker, c.noBreaker = b, false
	}
}

// WithoutCircuitBreaker removes the per-service circuit breaker. The default is
// one breaker per service ([WithCircuitBreaker]).
func WithoutCircuitBreaker() ClientOption {
	return func(c *clientConfig) { c.noBreaker = true }
}

// WithAttemptTimeout bounds each attempt with a failsafe timeout
// ([resilience.NewTimeoutBuilder]), so that a hung instance costs one attempt
// and not the caller's whole budget: an attempt it cuts is a failure of its
// instance, for the balancer and for outlier ejection, and a retryable
// request goes on to another instance. The default, and 0, is none: attempts
// are bounded only by the request's context. A negative d is invalid (see
// [NewClient]).
func WithAttemptTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) {
		if d < 0 {
			c.invalid("WithAttemptTimeout(%v): negative", d)
			return
		}
		c.attemptTimeout = d
	}
}

// WithDeadlineFloor sets the least time budget an attempt starts with. The
// default is [DefaultDeadlineFloor]; 0 means the default, and a negative d is
// invalid (see [NewClient]).
func WithDeadlineFloor(d time.Duration) ClientOption {
	return func(c *clientConfig) {
		switch {
		case d < 0:
			c.invalid("WithDeadlineFloor(%v): negative", d)
		case d > 0:
			c.deadlineFloor = d
		}
	}
}

// WithPolicies adds failsafe-go policies of your own, run around each attempt,
// inside the client's retries and circuit breaker: a bulkhead, a rate limiter,
// a fallback. The default is none.
func WithPolicies(p ...failsafe.Policy[*http.Response]) ClientOption {
	return func(c *clientConfig) { c.policies = append(c.policies, p...) }
}

// WithTransport sets the RoundTripper that sends each attempt to the chosen
// instance. The default is an http.Transport with [DefaultIdleConnsPerHost]
// idle connections per instance, a 5 s connect timeout, a 90 s idle timeout
// (below a pier Service's 120 s, so the client closes first) and no proxy
// (calls between services stay inside the network).
func WithTransport(rt http.RoundTripper) ClientOption {
	return func(c *clientConfig) { c.base = rt }
}

// WithIdempotencyKeys makes the client give every non-idempotent request (POST,
// PATCH) without an Idempotency-Key header a random one, so that it can be
// retried; the server must deduplicate by key ([github.com/pier-go/pier/idempotency.Middleware] does).
// The default is off: such requests are sent once.
func WithIdempotencyKeys() ClientOption {
	return func(c *clientConfig) { c.idempotencyKeys = true }
}

// NewClient returns an *http.Client whose requests to http://<service>/<path>
// go to an instance of service found through r: each attempt resolves the
// service from r's cache, chooses an instance with the balancer, skipping
// ejected instances and those the request already tried, and sends to it.
// Idempotent requests are retried within a budget; each service has a circuit
// breaker; instances that keep failing are ejected for a time. When the
// request's context has a deadline, the remaining budget goes downstream in
// [TimeoutHeader].
//
// A host that is not a service name (it has a port or a dot, or is
// "localhost") is sent as it is, through the same transport, without retries.
// So is every request when r is nil.
//
// Every attempt is traced, as a span of kind client named by its method, and
// measured; see the package documentation, "Telemetry", and
// [WithTracerProvider], [WithMeterProvider] and [WithPropagator].
//
// Options follow one grammar: zero means the default, a WithoutX option turns
// a thing off, and negative values are invalid. NewClient never panics: when
// an option is invalid (a negative value, a nil builder, a nil option), the
// client it returns fails every request, before sending anything, with an
// error prefixed "discovery: " that names each invalid option (inside the
// *url.Error that http.Client returns).
//
// The client has no Timeout of its own: bound requests with their context.
// It is safe for concurrent use, and meant to be made once and shared. It has
// no Close: a client that is dropped is garbage collected with its state, and
// its gauges' callback is then removed from the meter provider.
func NewClient(r Resolver, opts ...ClientOption) *http.Client {
	cfg := clientConfig{
		retries:       DefaultRetries,
		budgetRate:    DefaultBudgetRate,
		budgetMin:     DefaultBudgetMin,
		deadlineFloor: DefaultDeadlineFloor,
		now:           time.Now,
	}
	for i, o := range opts {
		if o == nil {
			cfg.invalid("option %d of NewClient is nil", i)
			continue
		}
		o(&cfg)
	}
	cfg.ejection = cfg.ejection.withDefaults()
	if cfg.base == nil {
		cfg.base = defaultTransport()
	}
	t := &clientTransport{resolver: r, cfg: cfg, tel: newTelemetry(&cfg)}
	t.services.Store(&map[string]*serviceState{})
	t.tel.observe(t)
	return &http.Client{Transport: t}
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   DefaultIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// clientTransport is the RoundTripper of NewClient.
type clientTransport struct {
	resolver Resolver
	cfg      clientConfig
	tel      *telemetry
	mu       sync.Mutex // serialises writers of services
	services atomic.Pointer[map[string]*serviceState]
}

// CloseIdleConnections closes the idle connections of the transport beneath,
// as http.Client.CloseIdleConnections expects of its transport.
func (t *clientTransport) CloseIdleConnections() {
	if c, ok := t.cfg.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip sends req to an instance of the service its host names, through
// the service's policies (resilience.Transport): each attempt is a call of the
// service's picker. When the retry policy is the only one, the first attempt
// goes to the picker before the policies run, and they run only when it
// failed (serviceState.firstThenRetries).
func (t *clientTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.cfg.err != nil {
		closeBody(req)
		return nil, t.cfg.err
	}
	if t.resolver == nil || !isServiceHost(req.URL.Host) {
		return t.direct(req)
	}
	svc := t.service(req.URL.Host)
	if t.cfg.idempotencyKeys && !resilience.Idempotent(req) {
		req = withIdempotencyKey(req)
	}
	// The service's breaker counts requests, not attempts: a request that
	// succeeded on a retry is a success, so one bad instance among good ones
	// (ejection's business) cannot open it for the whole service.
	if svc.breaker != nil && !svc.breaker.TryAcquirePermit() {
		closeBody(req)
		return nil, circuitbreaker.ErrOpen // unchanged, as failsafe's breaker policy returns it
	}
	ctx := req.Context()
	tr := &tried{gone: ctx.Done()}
	var resp *http.Response
	var err error
	switch {
	case !svc.direct:
		resp, err = svc.viaPolicies(req, tr)
	case svc.budget == nil || !resilience.Idempotent(req):
		// Sent once, with no policy around it: what the policies' chain
		// for such a request would do.
		resp, err = svc.once(req, tr)
	case req.Body == nil || req.Body == http.NoBody || req.GetBody != nil:
		resp, err = svc.firstThenRetries(req, tr)
	default:
		// A body to be read into memory before it can be sent again:
		// resilience.Transport does that.
		resp, err = svc.viaPolicies(req, tr)
	}
	if svc.breaker != nil {
		// A retry that the budget or the breaker (opened meanwhile) refused
		// leaves a request that failed on its instances; every other outcome
		// is classified as for an attempt, with the caller's request, so that
		// its own deadline is told from an instance's slowness. What that
		// does not call a failure goes to the breaker's own conditions (the
		// builder's HandleIf and the like): a success unless they say
		// otherwise, as failsafe's breaker policy records it.
		switch {
		case resilience.IsFailure(req, resp, err) || errors.Is(err, budget.ErrExceeded) ||
			errors.Is(err, circuitbreaker.ErrOpen):
			svc.breaker.RecordFailure()
		case err != nil:
			svc.breaker.RecordError(err)
		default:
			svc.breaker.RecordResult(resp)
		}
	}
	if t.tel.requests.Enabled(ctx) {
		outcome := 0
		if err != nil || resilience.FailureStatus(resp.StatusCode) {
			outcome = 1
		}
		t.tel.requests.Add(ctx, 1, svc.tel.outcome[outcome]...)
	}
	return resp, err
}

// direct sends req as it is, to the address it names, traced as one attempt.
func (t *clientTransport) direct(req *http.Request) (*http.Response, error) {
	start := t.cfg.now()
	ctx, span := t.tel.startAttempt(req.Context(), req.Method)
	out := req
	if ctx != req.Context() || t.tel.propagates(ctx) {
		out = req.WithContext(ctx)
		t.tel.inject(ctx, out, false)
	}
	if span.IsRecording() {
		host, port := hostPort(req.URL)
		describe(span, out, semconv.ServerAddress(host), semconv.ServerPort(port), nil, 0)
	}
	resp, err := t.cfg.base.RoundTrip(out)
	return t.tel.finish(ctx, span, nil, req.URL, out, resp, err, t.cfg.now().Sub(start)), err
}

type triedKey struct{}

// picker sends one attempt to an instance of its service.
type picker struct {
	t   *clientTransport
	svc *serviceState
}

// RoundTrip sends one attempt of req to an instance, chosen among those neither
// ejected nor tried by this request. When the connection cannot be made, the
// request was not sent, so it goes to another instance at once, whatever its
// method: as gRPC's transparent retries do for calls that never left.
func (p *picker) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tr, _ := ctx.Value(triedKey{}).(*tried)
	if tr == nil {
		tr = &tried{gone: ctx.Done()}
	} else if first := tr.replay; first != nil {
		// The request's first attempt, made before the policies ran
		// (serviceState.firstThenRetries): its outcome, not a new attempt.
		tr.replay = nil
		return first.resp, first.err
	}
	if svc := p.svc; svc.breaker != nil && svc.breaker.IsOpen() {
		// The service's breaker opened since this request passed it: its
		// retries stop, as they would with the breaker inside them.
		closeBody(req)
		return nil, circuitbreaker.ErrOpen
	}
	return p.send(req, tr)
}

// send sends one attempt of req, as RoundTrip does, recording the instances
// it tries in tr.
func (p *picker) send(req *http.Request, tr *tried) (*http.Response, error) {
	t, svc := p.t, p.svc
	ctx := req.Context()
	instances, err := t.resolver.Resolve(ctx, svc.name)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	eps := svc.endpointsOf(instances)
	for n := 0; ; n++ {
		now := t.cfg.now()
		ep, attempt, ended := tr.pick(t.cfg.balancer, eps, now, &svc.rr)
		if ep == nil {
			closeBody(req)
			return nil, fmt.Errorf("discovery: %w for %q", ErrNoInstances, svc.name)
		}
		if n > 0 && t.tel.retries.Enabled(ctx) {
			t.tel.retries.Add(ctx, 1, svc.tel.retry[1]...) // the last try could not connect
		}
		out, span, err := p.prepare(req, ep, n, attempt, now)
		if err != nil {
			tr.end(ended)
			closeBody(req)
			return nil, err
		}
		ep.inflight.Add(1)
		resp, err := t.cfg.base.RoundTrip(out)
		ep.inflight.Add(-1)
		end := t.cfg.now()
		rtt := end.Sub(now)
		overtaken := tr.end(ended)
		failed := resilience.IsFailure(out, resp, err)
		if err != nil && !failed && out.Context().Err() != nil {
			// Canceled before it answered.
			if tr.callerGone() || overtaken {
				// By the caller, or for losing to a hedge: no failure of
				// the instance, but it took at least rtt. A latency sample
				// even so, or the balancer would go on choosing a hung
				// instance, which never completes a request.
				ep.observeCut(end, rtt)
			} else {
				// By a policy while the caller still waits: an attempt
				// timeout, which the policy reports as timeout.ErrExceeded
				// while the attempt itself sees only a canceled context.
				// The instance was too slow: a failure, for the balancer,
				// for ejection and in the attempt's span.
				failed = true
				err = fmt.Errorf("discovery: attempt to %s canceled after %v: %w (%w)",
					ep.addr, rtt.Round(time.Millisecond), timeout.ErrExceeded, err)
			}
		}
		if failed || err == nil { // a caller's cancellation says nothing of the instance
			ep.observe(end, rtt, failed)
			if ep.record(end, failed, t.cfg.ejection, func(eject func()) bool {
				return svc.tryEject(end, t.cfg.ejection, eject)
			}) && t.tel.ejections.Enabled(ctx) {
				t.tel.ejections.Add(ctx, 1, svc.tel.onlyName...)
			}
		}
		resp = t.tel.finish(out.Context(), span, &svc.tel, req.URL, out, resp, err, rtt)
		if err == nil || !notSent(err) || out.Context().Err() != nil || n+1 >= len(eps) ||
			(req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
			return resp, err // a dial cut by the attempt's end is not retried here
		}
	}
}

// prepare returns the n-th try of req for ep, the request's attempt-th: a
// shallow copy (the caller's request is never modified) addressed to ep, with
// a fresh body after the first, the remaining time budget in TimeoutHeader,
// and the context of the attempt's span, which it starts, in its context and
// its headers.
func (p *picker) prepare(req *http.Request, ep *endpoint, n, attempt int, now time.Time) (*http.Request, trace.Span, error) {
	deadline, hasDeadline := req.Context().Deadline()
	left := deadline.Sub(now)
	if hasDeadline && left < p.t.cfg.deadlineFloor {
		return nil, nil, fmt.Errorf("discovery: %s %s: %v left, below the %v floor: %w",
			req.Method, req.URL, left.Round(time.Microsecond), p.t.cfg.deadlineFloor, context.DeadlineExceeded)
	}
	body := req.Body
	if n > 0 && req.GetBody != nil {
		var err error
		if body, err = req.GetBody(); err != nil {
			return nil, nil, fmt.Errorf("discovery: replay the body of %s %s: %w", req.Method, req.URL, err)
		}
	}
	tel := p.t.tel
	ctx, span := tel.startAttempt(req.Context(), req.Method)
	// The copy and its URL in one allocation; WithContext's own copy is
	// inlined and stays on the stack.
	a := &attemptRequest{Request: *req.WithContext(ctx), url: *req.URL}
	out := &a.Request
	a.url.Host = ep.addr
	out.URL = &a.url
	if out.Host == "" {
		out.Host = req.URL.Host // the server sees the service's name as Host
	}
	out.Body = body
	if hasDeadline {
		out.Header = cloneHeader(req.Header, 3)
		out.Header[timeoutKey] = []string{strconv.FormatInt(left.Milliseconds(), 10)}
	}
	tel.inject(ctx, out, hasDeadline)
	if span.IsRecording() {
		describe(span, out, ep.hostAttr, ep.portAttr, &p.svc.tel, attempt)
	}
	return out, span, nil
}

// attemptRequest is the request of one attempt and the URL it points to.
type attemptRequest struct {
	http.Request
	url url.URL
}

// closeBody closes req's body when no attempt will, as a RoundTripper must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// timeoutKey is TimeoutHeader in canonical form.
const timeoutKey = "X-Pier-Timeout-Ms"

// service returns the state of the service name, making it on first use.
func (t *clientTransport) service(name string) *serviceState {
	if s := (*t.services.Load())[name]; s != nil {
		return s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.services.Load()
	if s := old[name]; s != nil {
		return s
	}
	s := &serviceState{name: name, endpoints: make(map[string]*endpoint)}
	s.tel.init(name)
	tel, st := t.tel, &s.tel // the hooks hold these, never t
	var policies []failsafe.Policy[*http.Response]
	var retryBudget budget.Budget
	if t.cfg.retries > 0 {
		b := resilience.NewBudgetBuilder().
			OnBudgetExceeded(func(budget.ExceededEvent) {
				if ctx := context.Background(); tel.exhausted.Enabled(ctx) {
					tel.exhausted.Add(ctx, 1, st.onlyName...)
				}
			})
		retryBudget = b.WithMaxRate(t.cfg.budgetRate).WithMinConcurrency(t.cfg.budgetMin).Build()
		retry := resilience.NewRetryBuilder().
			WithMaxRetries(t.cfg.retries).
			WithBudget(retryBudget).
			WithDelayFunc(resilience.RetryDelay(t.cfg.backoffBase, t.cfg.backoffMax)). // zero: its defaults
			OnRetry(func(e failsafe.ExecutionEvent[*http.Response]) {
				if ctx := e.Context(); tel.retries.Enabled(ctx) {
					tel.retries.Add(ctx, 1, st.retry[0]...) // after a failure
				}
			})
		policies = append(policies, retry.Build())
	}
	if !t.cfg.noBreaker {
		b := t.cfg.breaker
		if b == nil {
			b = resilience.NewCircuitBreakerBuilder()
		}
		transition := func(e circuitbreaker.StateChangedEvent) {
			if ctx := context.Background(); tel.transitions.Enabled(ctx) && int(e.NewState) < len(st.transition) {
				tel.transitions.Add(ctx, 1, st.transition[e.NewState]...)
			}
		}
		// Built under t.mu, so b is never used by two goroutines at once. Not
		// a policy of the chain, where it would count attempts: RoundTrip asks
		// it for a permit and records each request's outcome.
		s.breaker = b.OnOpen(transition).OnHalfOpen(transition).OnClose(transition).Build()
	}
	// With no policy but the retry policy, which runs only after a failed
	// attempt, a request's first attempt goes straight to the picker (see
	// firstThenRetries); the budget the retry policy spends is then told of
	// the request as failsafe's retry policy would tell it.
	s.direct = len(t.cfg.policies) == 0 && t.cfg.attemptTimeout == 0
	if retryBudget != nil {
		// failsafe's WithBudget asserts these methods of the budget already.
		s.budget = retryBudget.(executionCounter)
	}
	policies = append(policies, t.cfg.policies...)
	if t.cfg.attemptTimeout > 0 {
		policies = append(policies, resilience.NewTimeoutBuilder(t.cfg.attemptTimeout).Build()) // innermost: per attempt
	}
	s.picker = &picker{t: t, svc: s}
	s.transport = resilience.Transport(s.picker, policies...)
	next := make(map[string]*serviceState, len(old)+1)
	maps.Copy(next, old)
	next[name] = s
	t.services.Store(&next)
	return s
}

// executionCounter is the part of failsafe-go's retry budget that its retry
// policy calls around each request it runs: the requests in flight, of which
// the budget lets a share be retries.
type executionCounter interface {
	RecordExecution()
	ReleaseExecution()
}

// viaPolicies sends req through the service's policies, tr travelling with it
// so that its retries and hedges go to instances it has not tried.
func (s *serviceState) viaPolicies(req *http.Request, tr *tried) (*http.Response, error) {
	return s.transport.RoundTrip(req.WithContext(context.WithValue(req.Context(), triedKey{}, tr)))
}

// once sends req in one attempt, as the policies' chain does for a request
// that is not retried when the chain has no other policy. With a retry
// policy, whose chain is then a failsafe execution without policies, a
// response that arrives as the caller's context ends is dropped for the
// context's error, as resilience.Transport's execution drops it; with no
// policy at all, resilience.Transport hands the request straight on, and so
// does once.
func (s *serviceState) once(req *http.Request, tr *tried) (*http.Response, error) {
	resp, err := s.picker.send(req, tr)
	if err == nil && s.budget != nil {
		if cerr := req.Context().Err(); cerr != nil {
			_ = resp.Body.Close()
			return nil, cerr
		}
	}
	return resp, err
}

// firstThenRetries sends a request that may be retried, when the only policy
// is the retry policy: its first attempt straight to the picker, and only
// when that fails, through the policies, whose first attempt is then the
// outcome already in hand (picker.RoundTrip replays it), so that the retry
// policy decides on it, delays, spends the budget and retries exactly as when
// it ran the first attempt itself. Most requests succeed at once, and a
// failsafe execution costs about a dozen allocations that they then skip.
//
// The budget counts the request in flight during the first attempt, as the
// retry policy counts it during its own, so that the share of retries it
// allows is of every request in flight.
func (s *serviceState) firstThenRetries(req *http.Request, tr *tried) (*http.Response, error) {
	s.budget.RecordExecution()
	resp, err := s.picker.send(req, tr)
	s.budget.ReleaseExecution()
	if err == nil && !resilience.FailureStatus(resp.StatusCode) && req.Context().Err() == nil {
		return resp, nil // what the retry policy would return: a success
	}
	tr.replay = &outcome{resp: resp, err: err}
	return s.viaPolicies(req, tr)
}

// outcome is an attempt's result.
type outcome struct {
	resp *http.Response
	err  error
}

// notSent reports whether err means the request was never sent: the
// connection to the instance could not be made.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isServiceHost reports whether host names a service rather than an address:
// a DNS label with no port and no dot, and not localhost.
func isServiceHost(host string) bool {
	return host != "localhost" && ValidateServiceName(host) == nil
}

// idempotencyKey is the header [WithIdempotencyKeys] sets:
// [github.com/pier-go/pier/idempotency.Header], written out so that the client
// imports no server-side package, as resilience does.
const idempotencyKey = "Idempotency-Key"

// withIdempotencyKey returns req with a random Idempotency-Key. RoundTrip calls
// it only for a request that is not idempotent already, so one without a key.
func withIdempotencyKey(req *http.Request) *http.Request {
	out := *req
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header, 1)
	}
	out.Header[idempotencyKey] = []string{rand.Text()}
	return &out
}
