package gateway

import (
	"context"
	"runtime"
	"sync"
	"weak"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Outcomes of a request, the values of the outcome attribute of
// pier.gateway.requests.
const (
	outcomeProxied     = "proxied"      // the upstream answered (any status)
	outcomeBadRequest  = "bad_request"  // path, target or headers refused
	outcomeNotFound    = "not_found"    // no route
	outcomeMethod      = "method"       // 405
	outcomePreflight   = "preflight"    // CORS preflight answered
	outcomeForbidden   = "forbidden"    // CORS origin refused, or scopes
	outcomeUnauth      = "unauthorized" // 401
	outcomeLimited     = "rate_limited" // 429
	outcomeTooLarge    = "too_large"    // 413
	outcomeTimeout     = "timeout"      // 504
	outcomeUnavailable = "unavailable"  // 502, 503
	outcomeCanceled    = "canceled"     // the client went away
)

var outcomes = []string{outcomeProxied, outcomeBadRequest, outcomeNotFound, outcomeMethod, outcomePreflight,
	outcomeForbidden, outcomeUnauth, outcomeLimited, outcomeTooLarge, outcomeTimeout, outcomeUnavailable,
	outcomeCanceled}

// Attribute keys of the gateway's metrics.
const (
	routeKey   = attribute.Key("pier.gateway.route")
	outcomeKey = attribute.Key("outcome")
	reasonKey  = attribute.Key("reason")
	limitKey   = attribute.Key("limit")
	issuerKey  = attribute.Key("issuer")
)

// telemetry holds the gateway's instruments.
type telemetry struct {
	meter       metric.Meter
	requests    metric.Int64Counter
	authFails   metric.Int64Counter
	rateLimited metric.Int64Counter
	jwksAge     metric.Float64ObservableGauge
	jwksKeys    metric.Int64ObservableGauge
}

func newTelemetry(mp metric.MeterProvider) (*telemetry, error) {
	m := mp.Meter("github.com/pier-go/pier/gateway")
	t := &telemetry{meter: m}
	var err error
	if t.jwksAge, err = m.Float64ObservableGauge("pier.gateway.jwks.age",
		metric.WithDescription("Time since the last fetch of an issuer's JWKS that brought usable keys, by issuer; absent until one has."),
		metric.WithUnit("s")); err != nil {
		return nil, err
	}
	if t.jwksKeys, err = m.Int64ObservableGauge("pier.gateway.jwks.keys",
		metric.WithDescription("Usable keys in an issuer's JWKS as the gateway holds it, by issuer: 0 until a fetch brings some."),
		metric.WithUnit("{key}")); err != nil {
		return nil, err
	}
	if t.requests, err = m.Int64Counter("pier.gateway.requests",
		metric.WithDescription("Requests the gateway handled, by route and outcome."),
		metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	if t.authFails, err = m.Int64Counter("pier.gateway.auth.failures",
		metric.WithDescription("Requests refused by token verification, by route and reason."),
		metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	if t.rateLimited, err = m.Int64Counter("pier.gateway.rate_limited",
		metric.WithDescription("Requests refused by a rate limit, by route and limit (route or pre_auth)."),
		metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	return t, nil
}

// routeTelemetry holds a route's attribute sets, made once per table.
type routeTelemetry struct {
	outcome map[string]metric.AddOption
	limited [2]metric.AddOption // route, pre_auth
	name    string
	mu      sync.Mutex
	reasons map[string]metric.AddOption
}

func (rt *routeTelemetry) init(name string) {
	rt.name = name
	rt.outcome = make(map[string]metric.AddOption, len(outcomes))
	for _, o := range outcomes {
		rt.outcome[o] = metric.WithAttributeSet(attribute.NewSet(routeKey.String(name), outcomeKey.String(o)))
	}
	rt.limited[0] = metric.WithAttributeSet(attribute.NewSet(routeKey.String(name), limitKey.String("route")))
	rt.limited[1] = metric.WithAttributeSet(attribute.NewSet(routeKey.String(name), limitKey.String("pre_auth")))
	rt.reasons = make(map[string]metric.AddOption)
}

// reason returns the attribute set of an auth failure for reason; the
// reasons come from a short fixed list, so the map stays small.
func (rt *routeTelemetry) reason(reason string) metric.AddOption {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	o, ok := rt.reasons[reason]
	if !ok {
		o = metric.WithAttributeSet(attribute.NewSet(routeKey.String(rt.name), reasonKey.String(reason)))
		rt.reasons[reason] = o
	}
	return o
}

func (t *telemetry) count(ctx context.Context, rt *routeTelemetry, outcome string) {
	if t.requests.Enabled(ctx) {
		t.requests.Add(ctx, 1, rt.outcome[outcome])
	}
}

// observeKeySets registers the callback of the JWKS gauges, which reads the
// key sets of g's verifier. The callback holds g only weakly, and the
// registration is undone once g is garbage, so that a gateway that is
// dropped (it has no Close) leaves nothing behind in the meter provider.
func (t *telemetry) observeKeySets(g *Gateway) error {
	ref := weak.Make(g)
	age, keys := t.jwksAge, t.jwksKeys
	reg, err := t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		g := ref.Value()
		if g == nil {
			return nil
		}
		now := g.cfg.now()
		for _, ks := range g.cfg.auth.v.KeySets() {
			set := metric.WithAttributeSet(attribute.NewSet(issuerKey.String(ks.Issuer)))
			o.ObserveInt64(keys, int64(ks.Keys), set)
			if !ks.Fetched.IsZero() {
				o.ObserveFloat64(age, now.Sub(ks.Fetched).Seconds(), set)
			}
		}
		return nil
	}, age, keys)
	if err != nil {
		return err
	}
	if reg != nil {
		runtime.AddCleanup(g, func(r metric.Registration) { _ = r.Unregister() }, reg)
	}
	return nil
}
