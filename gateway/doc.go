// Package gateway is pier's API gateway: an [http.Handler] that routes requests
// to services found through discovery, with token auth, rate limits and header
// hygiene, on httputil.ReverseProxy.
//
//	routes, err := gateway.LoadRoutes("routes.yaml", data)
//	if err != nil {
//		return err
//	}
//	gw, err := gateway.New(discovery.NewClient(registry), routes, gateway.WithVerifier(verifier))
//	if err != nil {
//		return err
//	}
//	svc.Handle("/", gw)
//
// # A request's way through
//
// For each request, in this order: the request-target and headers are checked
// (400); one function, canonicalPath, decides the path that routing, auth,
// rate limiting and the upstream request all use (400 when the path is
// ambiguous); the route with the longest prefix matching on segment
// boundaries is chosen (404 when none); a CORS preflight is answered for the
// route's allowed origins (204, or 403); the method is checked (405 with
// Allow); WebSocket upgrades are refused on routes without [Route.WebSocket]
// (400) and every other protocol switch, h2c included, is ignored; the token
// is verified and its scopes checked (401 or 403 with WWW-Authenticate); the
// route's rate limit is applied (429 with Retry-After); the body is bounded
// (413); then the request goes to http://<service>/<path> through the
// client. A failed upstream call is answered 502, or 503 when the service has
// no instance or its breaker is open, or 504 when the route's timeout
// expired. Every answer the gateway writes itself is an RFC 9457 problem
// document.
//
// # Paths
//
// The path is decoded once. Escapes of /, \, ., ;, ?, #, % and control
// characters are refused, as are raw \ and ;, "." and ".." segments and empty
// segments; an absolute-form request-target or a fragment never passes. After
// a strip or a rewrite the path is checked again. The upstream receives exactly
// the path that was routed and authorised. docs/gateway.md lists each rule with
// the vulnerability it answers.
//
// # Headers
//
// Hop-by-hop headers, and those the client's Connection header names, are
// removed before the gateway sets its own, so a client cannot strip them.
// Every incoming header that speaks of the caller's identity or of forwarding
// (X-User-*, X-Forwarded-*, Forwarded, X-Real-IP, X-Original-*,
// X-Rewrite-URL, and more), in any case or spelled with underscores, is
// dropped; X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Forwarded and
// X-Real-IP are rebuilt, believing incoming values only from
// [WithTrustedProxies]. Header values holding CR, LF or NUL are refused. The
// verified Authorization header goes on to the upstream, which verifies it
// again; X-Request-ID is set.
//
// # Metrics
//
// Through the OpenTelemetry metric API ([WithMeterProvider]):
// pier.gateway.requests by pier.gateway.route and outcome,
// pier.gateway.auth.failures by route and reason, and
// pier.gateway.rate_limited by route and limit (route or pre_auth); for each
// of the verifier's JWKS issuers, pier.gateway.jwks.age (seconds since its key
// set was last fetched with usable keys) and pier.gateway.jwks.keys, by
// issuer (auth.Verifier.KeySets). The upstream calls are measured and traced
// by the discovery client.
package gateway
