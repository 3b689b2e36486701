// Package discovery finds the instances of services: the [Instance],
// [Registrar], [Resolver] and [Registry] interfaces, the in-memory registry
// ([NewMemory]) and the static one ([NewStatic], [StaticFromEnv]).
//
// A service registers itself through a [Registrar] once it serves, and callers
// find it through a [Resolver], by name: the host in http://users/users/42.
// Resolve is cheap everywhere: every implementation serves it from memory that
// a background watch keeps current, never with a remote call per request, so it
// can run on every request.
//
// # Registries
//
//   - [Memory]: one process, tests, several services in one binary.
//   - [Static]: fixed addresses from code or from PIER_SERVICES.
//   - discovery/consul: Consul, with health checks and blocking-query watches.
//   - discovery/dns: DNS SRV or A/AAAA records, for Kubernetes headless services.
//
// discovery/discoverytest holds the conformance suite they all pass.
//
// # Telemetry
//
// The client of [NewClient] traces every attempt, not every request: each is a
// span of kind client named by its method ("GET"), a child of the span in the
// request's context, started once an instance is chosen, with the semantic
// conventions' http.request.method, server.address and server.port (the
// instance), url.full (the URL sent, with the instance's address),
// http.response.status_code, network.protocol.version and, when it failed,
// error.type ("503", "connection_refused", "timeout", ...) and an error
// status, plus pier.service ([ServiceKey]) and pier.attempt ([AttemptKey],
// from 1). A retried request, or one whose first instance refused the
// connection, thus shows as several spans. The span ends when the response
// body is closed or read to the end. Its context goes to the instance in the
// attempt's headers, W3C Trace Context and Baggage by default
// ([WithPropagator]); the caller's request is never modified.
//
// Its metrics carry the called service as pier.service, never an instance's
// address, so that their series stay few:
//
//   - http.client.request.duration (histogram, s): per attempt, with the
//     semantic conventions' attributes, server.address being the service's
//     name as the caller wrote it;
//   - pier.client.requests (counter): per request, after retries, with
//     outcome success or failure (an error, or a 429, 502, 503 or 504);
//   - pier.client.retries (counter): with reason failure (the retry policy's)
//     or unsent (the connection was refused, so another instance is tried);
//   - pier.client.retry_budget.exhausted (counter): retries the budget refused;
//   - pier.client.breaker.transitions (counter, with state closed, open or
//     half-open) and pier.client.breaker.state (gauge: 0 closed, 1 half-open,
//     2 open);
//   - pier.client.ejections (counter) and pier.client.ejected (gauge):
//     outlier ejection.
//
// Providers come from [WithTracerProvider] and [WithMeterProvider], or are the
// global ones; with the global no-op providers the telemetry costs three small
// allocations an attempt. discovery/consul and discovery/dns report
// pier.discovery.instances, pier.discovery.staleness and
// pier.discovery.watch.errors for the services they watch.
package discovery
