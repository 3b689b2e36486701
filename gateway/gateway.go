package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"go.opentelemetry.io/otel"

	"github.com/pier-go/pier/auth"
	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/internal/bodylimit"
	"github.com/pier-go/pier/internal/bufpool"
	"github.com/pier-go/pier/internal/requestid"
	"github.com/pier-go/pier/problem"
)

// Gateway is an [http.Handler] that routes requests to services: canonical
// path, route, CORS, method, token, rate limit, body limit, then an
// httputil.ReverseProxy through the discovery-aware client. Make it with
// [New]. It is safe for concurrent use, and its route table can be replaced
// while it serves ([Gateway.SetRoutes]).
type Gateway struct {
	cfg       config
	transport http.RoundTripper
	proxy     *httputil.ReverseProxy
	table     atomic.Pointer[table]
	mu        sync.Mutex // serialises SetRoutes
	preAuth   *limiterStore
	tel       *telemetry
	noRoute   routeTelemetry
	ready     readyCache
}

// New returns a Gateway that sends the requests matching routes to
// http://<route.Service>/<path> through client, whose Transport carries
// every upstream call: it should be a discovery-aware client
// (discovery.NewClient over a registry), so that each call is balanced,
// retried within budget, broken and traced. Only client's Transport is used
// (http.DefaultTransport when nil); bound requests with [Route.Timeout].
//
// New fails when client is nil, an option is nil or invalid, or a route is
// invalid; a route that needs a token needs [WithVerifier].
func New(client *http.Client, routes []Route, opts ...Option) (*Gateway, error) {
	if client == nil {
		return nil, errors.New("gateway: nil client")
	}
	cfg := config{
		preAuthRate:  DefaultPreAuthRate,
		preAuthBurst: DefaultPreAuthBurst,
		maxKeys:      DefaultMaxKeys,
		now:          time.Now,
		tokenTTL:     DefaultTokenCacheTTL,
		tokenSize:    DefaultTokenCacheSize,
		readyPath:    DefaultReadyPath,
		readyTTL:     DefaultReadyTTL,
	}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("gateway: option %d is nil", i)
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	if cfg.auth != nil && !cfg.noTokenCache {
		cfg.auth.cache = newTokenCache(cfg.tokenTTL, cfg.tokenSize)
	}
	if cfg.meterProvider == nil {
		cfg.meterProvider = otel.GetMeterProvider()
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	tel, err := newTelemetry(cfg.meterProvider)
	if err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	g := &Gateway{cfg: cfg, tel: tel, transport: client.Transport}
	if g.transport == nil {
		g.transport = http.DefaultTransport
	}
	if cfg.auth != nil {
		if err := tel.observeKeySets(g); err != nil {
			return nil, fmt.Errorf("gateway: metrics: %w", err)
		}
	}
	g.noRoute.init("")
	if !cfg.noPreAuth {
		g.preAuth = newLimiterStore(cfg.preAuthRate, cfg.preAuthBurst, cfg.maxKeys)
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      g.transport,
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.proxyError,
		BufferPool:     &bufpool.Pool{},
		ErrorLog:       slog.NewLogLogger(cfg.logger.Handler(), slog.LevelWarn),
	}
	g.ready.entries = make(map[string]*readyEntry)
	t, err := g.compile(routes, nil)
	if err != nil {
		return nil, err
	}
	g.table.Store(t)
	return g, nil
}

// SetRoutes replaces the whole route table at once: every request is routed
// by the old table or by the new one, never by a mix. A table that fails to
// validate leaves the old one in place, and the error says why. Rate limit
// buckets carry over to a route of the same name and the same limit. It is
// safe to call while the gateway serves.
func (g *Gateway) SetRoutes(routes []Route) error {
	return g.setRoutes(routes, nil)
}

func (g *Gateway) setRoutes(routes []Route, lines []int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, err := g.compile(routes, lines)
	if err != nil {
		return err
	}
	g.table.Store(t)
	return nil
}

// compile validates routes and finishes them for this gateway, reusing the
// rate limiters of old routes with the same name and limit.
func (g *Gateway) compile(routes []Route, lines []int) (*table, error) {
	t, err := buildTable(routes, "", lines)
	if err != nil {
		return nil, err
	}
	old := g.table.Load()
	var errs []error
	for _, r := range t.routes {
		if r.Auth == AuthToken {
			if g.cfg.auth == nil {
				errs = append(errs, &RouteError{Route: r.Name, Field: "Auth",
					Err: errors.New("the route needs a token and the gateway has no verifier (WithVerifier); use Auth \"none\" for an open route")})
				continue
			}
			r.authRule = g.cfg.auth.compile(r.Scopes, r.AllScopes)
		}
		if rl := r.RateLimit; rl != nil {
			if old != nil {
				for _, o := range old.routes {
					if o.Name == r.Name && o.RateLimit != nil && *o.RateLimit == *rl {
						r.limiter = o.limiter
					}
				}
			}
			if r.limiter == nil {
				r.limiter = newLimiterStore(rl.Rate, rl.Burst, g.cfg.maxKeys)
			}
			r.policy = []string{strconv.Quote(r.Name) + ";q=" + strconv.Itoa(rl.Burst) +
				";w=" + strconv.FormatInt(int64(math.Ceil(float64(rl.Burst)/rl.Rate)), 10)}
			r.rateName = strconv.Quote(r.Name) + ";r="
		}
		r.tel.init(r.Name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// state is what one request carries from ServeHTTP to the proxy's hooks. It
// is a context too, the one the upstream request's is made from: its parent
// (the incoming request's, cancelable by the route's timeout) with the state
// as a value, in one allocation.
type state struct {
	context.Context
	route   *route
	path    string // the upstream path, canonical
	fwd     forwarding
	origin  string
	timer   *time.Timer
	outcome string
}

type stateKey struct{}

// Value returns the state itself for stateKey, else what its parent holds.
func (st *state) Value(key any) any {
	if key == (stateKey{}) {
		return st
	}
	return st.Context.Value(key)
}

func stateOf(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	return st
}

// errUpstreamTimeout is the cause of the cancellation of an upstream request
// that outlived its route's timeout.
var errUpstreamTimeout = errors.New("gateway: the upstream did not answer within the route's timeout")

// ServeHTTP routes r. Every answer the gateway writes itself is a problem
// document (RFC 9457); see the package documentation for the statuses.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := g.table.Load()
	raw, err := requestTarget(r.RequestURI, r.URL)
	if err == nil {
		err = checkHeaders(r.Header)
	}
	if err != nil {
		g.refuse(w, r, &g.noRoute, http.StatusBadRequest, outcomeBadRequest, err.Error())
		return
	}
	p, err := canonicalPath(raw)
	if err != nil {
		g.refuse(w, r, &g.noRoute, http.StatusBadRequest, outcomeBadRequest, err.Error())
		return
	}
	rt := t.match(p)
	if rt == nil {
		g.refuse(w, r, &g.noRoute, http.StatusNotFound, outcomeNotFound, "no route for this path")
		return
	}
	if rt.cors != nil && isPreflight(r) {
		if detail := rt.cors.preflight(w, r); detail != "" {
			g.refuse(w, r, &rt.tel, http.StatusForbidden, outcomeForbidden, detail)
			return
		}
		g.tel.count(r.Context(), &rt.tel, outcomePreflight)
		return
	}
	if rt.methods != nil && !rt.methods[r.Method] {
		w.Header().Set("Allow", rt.allow)
		g.refuse(w, r, &rt.tel, http.StatusMethodNotAllowed, outcomeMethod, "method "+r.Method+" is not allowed on this route")
		return
	}
	if up := upgradeOf(r.Header); up != "" {
		if !strings.EqualFold(up, "websocket") {
			// h2c and any other protocol switch is refused by ignoring it, as
			// RFC 9110 lets a server do: the request goes on as plain HTTP/1.1.
			r = withoutUpgrade(r)
		} else if !rt.WebSocket {
			g.refuse(w, r, &rt.tel, http.StatusBadRequest, outcomeBadRequest, "this route does not accept WebSocket connections")
			return
		}
	}
	upPath, err := upstreamPath(p, rt.Prefix, rt.StripPrefix, rt.Rewrite)
	if err != nil {
		g.refuse(w, r, &rt.tel, http.StatusBadRequest, outcomeBadRequest, err.Error())
		return
	}
	st := &state{route: rt, path: upPath, fwd: g.cfg.trusted.forwardingOf(r), origin: r.Header.Get("Origin")}
	var keyBuf [80]byte
	subject := ""
	var claims *auth.Claims
	if rt.Auth == AuthToken {
		var ipk []byte
		if g.preAuth != nil {
			ipk = ipKey(keyBuf[:0], st.fwd.client)
			if d, ok := g.preAuth.peek(ipk, g.cfg.now()); !ok {
				if g.tel.rateLimited.Enabled(r.Context()) {
					g.tel.rateLimited.Add(r.Context(), 1, rt.tel.limited[1])
				}
				w.Header().Set("Retry-After", seconds(d))
				g.refuse(w, r, &rt.tel, http.StatusTooManyRequests, outcomeLimited, "too many failed token verifications from this address")
				return
			}
		}
		c, fail := g.cfg.auth.verify(r, rt, g.cfg.now())
		if fail != nil {
			if g.preAuth != nil && fail.status == http.StatusUnauthorized {
				g.preAuth.take(ipk, g.cfg.now())
			}
			if g.tel.authFails.Enabled(r.Context()) {
				g.tel.authFails.Add(r.Context(), 1, rt.tel.reason(fail.reason))
			}
			w.Header().Set("WWW-Authenticate", fail.challenge)
			outcome := outcomeUnauth
			if fail.status == http.StatusForbidden {
				outcome = outcomeForbidden
			}
			g.refuse(w, r, &rt.tel, fail.status, outcome, fail.detail)
			return
		}
		claims, subject = c, c.Subject
	}
	if rt.limiter != nil {
		key := rateKey(keyBuf[:0], rt.RateLimit, subject, r, st.fwd)
		d := rt.limiter.take(key, g.cfg.now())
		h := w.Header()
		h["Ratelimit-Policy"] = rt.policy // shared: net/http and the proxy only read it, or append to a copy
		h["Ratelimit"] = []string{rateLimitValue(rt.rateName, d)}
		if !d.ok {
			if g.tel.rateLimited.Enabled(r.Context()) {
				g.tel.rateLimited.Add(r.Context(), 1, rt.tel.limited[0])
			}
			h.Set("Retry-After", seconds(d.retry))
			g.refuse(w, r, &rt.tel, http.StatusTooManyRequests, outcomeLimited, "rate limit exceeded")
			return
		}
	}
	if r.ContentLength > rt.bodyLimit {
		g.refuse(w, r, &rt.tel, http.StatusRequestEntityTooLarge, outcomeTooLarge,
			"the request body is larger than this route's limit of "+strconv.FormatInt(rt.bodyLimit, 10)+" bytes")
		return
	}
	// The route's timeout cancels the upstream call: a cancelable context
	// right under the server's, which is where canceling it looks first,
	// then the state and the claims above it.
	cctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	st.Context = cctx
	var ctx context.Context = st
	if claims != nil {
		ctx = auth.NewContext(ctx, claims)
	}
	st.timer = time.AfterFunc(rt.timeout, func() { cancel(errUpstreamTimeout) })
	defer st.timer.Stop()
	out := r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		// The writer net/http made, under any middleware's wrapper, so that
		// it closes the connection after a body that ran over the limit.
		out.Body = http.MaxBytesReader(bodylimit.BaseWriter(w), r.Body, rt.bodyLimit)
	}
	g.proxy.ServeHTTP(w, out)
	if st.outcome == "" {
		st.outcome = outcomeProxied
	}
	g.tel.count(r.Context(), &rt.tel, st.outcome)
}

// refuse answers with a problem and counts the outcome.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, rt *routeTelemetry, status int, outcome, detail string) {
	g.tel.count(r.Context(), rt, outcome)
	problem.Status(w, r, status, detail)
}

// rateLimitValue returns the RateLimit header of decision d on the route
// whose rateName is given, in one allocation.
func rateLimitValue(rateName string, d decision) string {
	var buf [96]byte // on the stack unless the route's name is long
	b := append(buf[:0], rateName...)
	b = strconv.AppendInt(b, int64(d.remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, int64(math.Ceil(d.reset.Seconds())), 10)
	return string(b)
}

// seconds formats d as whole seconds, rounded up.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

// rateKey returns the key r is counted by under rl.
func rateKey(buf []byte, rl *RateLimit, subject string, r *http.Request, fwd forwarding) []byte {
	switch rl.Key {
	case RateKeySubject:
		if subject != "" {
			return append(append(buf, 's'), subject...)
		}
	case RateKeyHeader:
		if v := r.Header.Get(rl.Header); v != "" {
			if len(v) > 256 {
				v = v[:256]
			}
			return append(append(buf, 'h'), v...)
		}
	}
	return ipKey(buf, fwd.client)
}

// upgradeOf returns the protocol r asks to switch to, or "".
func upgradeOf(h http.Header) string {
	if _, ok := h["Upgrade"]; !ok {
		if _, ok := h["Http2-Settings"]; !ok {
			return ""
		}
		return "h2c"
	}
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return h.Get("Upgrade") // without Connection: upgrade; dropped all the same
}

// withoutUpgrade returns r without the headers that ask for a protocol
// switch.
func withoutUpgrade(r *http.Request) *http.Request {
	out := *r
	out.Header = r.Header.Clone()
	delete(out.Header, "Upgrade")
	delete(out.Header, "Http2-Settings")
	return &out
}

// rewrite makes the upstream request: URL from the canonical path, the
// gateway's own forwarding headers after every incoming identity header is
// dropped. httputil.ReverseProxy has already removed the hop-by-hop headers,
// and those the client's Connection header names, from Out; what the gateway
// sets here comes after that, so a client cannot strip it that way.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In.Context())
	out := pr.Out
	u := out.URL // the proxy's own copy (Request.Clone)
	u.Scheme = "http"
	u.Host = st.route.Service
	u.Path = st.path
	u.RawPath = escapePath(st.path)
	u.Opaque, u.User, u.Fragment, u.RawFragment = "", nil, "", ""
	out.Host = ""
	out.RequestURI = ""
	h := out.Header
	dropIdentity(h)
	delete(h, "Http2-Settings")
	id := requestid.FromContext(pr.In.Context())
	if id == "" {
		if v := pr.In.Header.Get(requestid.Header); requestid.Valid(v) {
			id = v
		} else {
			id = requestid.New()
		}
	}
	st.fwd.setForwarding(h, id)
	if vv := pr.In.Header["Authorization"]; len(vv) > 0 {
		h["Authorization"] = vv
	}
	for k := range out.Trailer {
		if isIdentityHeader(k) || strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "X-Request-Id") {
			delete(out.Trailer, k)
		}
	}
}

// modifyResponse runs when the upstream's response headers arrive: the route
// timeout stops, and the route's CORS headers replace the upstream's.
func (g *Gateway) modifyResponse(res *http.Response) error {
	st := stateOf(res.Request.Context())
	if st == nil {
		return nil
	}
	st.timer.Stop()
	if st.route.cors != nil {
		st.route.cors.respond(res.Header, st.origin)
	}
	st.outcome = outcomeProxied
	return nil
}

// proxyError answers a failed upstream call: 504 when the route's timeout
// expired, 413 when the body outgrew its limit, 503 when the service has no
// instance or its breaker or budget refused the call, 502 otherwise.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r.Context())
	if st == nil { // not one of ours; cannot happen
		problem.Status(w, r, http.StatusBadGateway, "")
		return
	}
	var tooLarge *http.MaxBytesError
	status, detail := http.StatusBadGateway, "the upstream service failed to answer"
	switch {
	case errors.Is(context.Cause(r.Context()), errUpstreamTimeout):
		st.outcome = outcomeTimeout
		status, detail = http.StatusGatewayTimeout, "the upstream service did not answer within "+st.route.timeout.String()
	case errors.As(err, &tooLarge):
		st.outcome = outcomeTooLarge
		status, detail = http.StatusRequestEntityTooLarge,
			"the request body is larger than this route's limit of "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes"
	case r.Context().Err() != nil:
		st.outcome = outcomeCanceled // the client went away; nobody reads an answer
		g.cfg.logger.LogAttrs(r.Context(), slog.LevelDebug, "gateway: client went away",
			slog.String("route", st.route.Name), slog.String("error", err.Error()))
		return
	case errors.Is(err, discovery.ErrNoInstances), errors.Is(err, circuitbreaker.ErrOpen),
		errors.Is(err, budget.ErrExceeded), errors.Is(err, bulkhead.ErrFull):
		st.outcome = outcomeUnavailable
		status, detail = http.StatusServiceUnavailable, "the upstream service is unavailable"
		w.Header().Set("Retry-After", "1")
	default:
		st.outcome = outcomeUnavailable
	}
	g.cfg.logger.LogAttrs(r.Context(), slog.LevelWarn, "gateway: upstream call failed",
		slog.String("route", st.route.Name), slog.String("service", st.route.Service),
		slog.Int("status", status), slog.String("error", err.Error()))
	if g.cfg.exposeUpstream && status == http.StatusBadGateway {
		detail += ": " + err.Error()
	}
	problem.Status(w, r, status, detail)
}
