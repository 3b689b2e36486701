package gateway

import (
	"context"
	"sync"

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
)

// telemetry holds the gateway's instruments.
type telemetry struct {
	requests    metric.Int64Counter
	authFails   metric.Int64Counter
	rateLimited metric.Int64Counter
}

func newTelemetry(mp metric.MeterProvider) (*telemetry, error) {
	m := mp.Meter("github.com/pier-go/pier/gateway")
	t := &telemetry{}
	var err error
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
