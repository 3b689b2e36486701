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
package discovery
