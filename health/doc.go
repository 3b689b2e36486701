// Package health runs a service's dependency checks and serves its liveness,
// readiness and detail endpoints.
//
// A [Monitor] holds named [Checker]s and the service's lifecycle [State]. The
// service package creates one per Service, adds the checks given to
// service.WithHealthCheck, mounts the three handlers and moves the state along as
// the Service starts and stops. Nothing here is global: a process may hold any
// number of Monitors.
//
// # Endpoints
//
//   - GET /health/live ([Monitor.LiveHandler]) answers 200 {"status":"pass"} for as
//     long as the process serves HTTP. It never runs dependency checks: a database
//     that is down must make the instance unready, not get it restarted.
//   - GET /health/ready ([Monitor.ReadyHandler]) answers 200 {"status":"pass"}, or
//     {"status":"warn"} when only non-critical checks fail, when the state is
//     [StateServing] and every critical check passes. Otherwise it answers 503 with an
//     RFC 9457 application/problem+json body whose detail says why: "service is
//     starting", "service is draining", or which critical checks fail. Load
//     balancers, registries and Kubernetes readiness probes route traffic on it.
//   - GET /health ([Monitor.DetailHandler]) answers the [Report] as JSON, with each
//     check's name and status: 200 when ready, 503 otherwise. It is for people and
//     dashboards.
//
// Every answer carries Cache-Control: no-store. HEAD requests get the headers
// without a body.
//
// # Public and private answers
//
// A check's error message can name internal hosts, addresses and database errors
// ("dial tcp 10.0.0.7:5432: connection refused"), and a service's health endpoints
// are reachable by whoever reaches the service. So by default the handlers show
// each check's name and status alone. [WithCheckErrors] makes them show the errors
// (and, in the detail, each check's criticality, duration and time): serve those
// handlers only where the public cannot reach them. The service package serves the
// detail with errors on its admin listener (service.WithAdminAddr) and the
// default answers on its public one.
//
// # Critical and non-critical checks
//
// A check is critical unless it is added with [NonCritical]. A failing critical
// check makes the instance unready (status "fail"); a failing non-critical check,
// say a cache the service can run without, only turns the status to "warn" and the
// instance keeps receiving traffic.
//
// # Timeouts
//
// Each check runs with its own deadline, [DefaultTimeout] unless [Timeout] says
// otherwise. Its context carries the probe's values but not the probe's
// cancellation, so a client that hangs up cannot spoil the result other probes
// share. A checker that ignores its context is cut off at the deadline all the
// same and reported failed ("timed out after 1s"); its goroutine is left to finish
// on its own, and until it does no second one is started for that check: probes
// report "previous run still in progress since ..." instead. So a hung dependency
// costs at most one goroutine per check.
//
// A checker that panics is reported failed with the panic value; the process goes
// on.
//
// # Caching
//
// Probes come from many places at once (every load balancer, registry agent and
// orchestrator polls), so a check's result is reused for [DefaultCacheTTL] (see
// [WithCacheTTL]), and concurrent probes of a stale check share one run: a
// dependency sees at most one check in flight per instance, however many probes
// arrive. Passing and failing results are cached alike.
//
// # Lifecycle
//
// A new Monitor is in [StateStarting]: readiness answers 503 without running any
// check. The service sets [StateServing] once its listener is bound and its start
// hooks have run; readiness then follows the critical checks. When the service
// begins to stop it sets [StateDraining] first, so readiness answers 503 at once and
// traffic is routed elsewhere while in-flight requests finish. Liveness answers 200
// in every state.
package health
