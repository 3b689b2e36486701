// Package consul is a [discovery.Registry] on Consul: services register with
// the local Consul agent, and callers resolve them from a cache that Consul's
// blocking queries keep current.
//
//	client, err := api.NewClient(api.DefaultConfig()) // CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, ...
//	if err != nil {
//		return err
//	}
//	reg, err := consul.New(client)
//	if err != nil {
//		return err
//	}
//	defer reg.Close()
//
// The [api.Client] is injected and carries everything about reaching Consul:
// the agent's address, the ACL token, TLS and the default datacenter. The
// package reads nothing from the environment itself; [api.DefaultConfig] does,
// when the caller chooses it.
//
// # Health checks
//
// [Registry.Register] gives every instance one check. By default Consul calls
// GET http://<Instance.Addr>/health/ready every 5 s (timeout 2 s): the
// readiness endpoint of a pier service, so an instance that is draining or
// unready leaves the resolved set. The check starts passing, because a pier
// service registers only once it serves and is ready; its first run confirms
// it. See [WithHealthPath], [WithCheckInterval] and [WithCheckTimeout].
//
// Where Consul cannot reach the instances, [WithTTL] uses TTL checks instead:
// the Registry marks each of its instances passing every TTL/3 and Consul
// turns one critical when a TTL goes by without a mark, so a process that dies
// leaves the set within one TTL.
//
// Either way, Resolve returns only instances whose checks all pass, and Consul
// removes an instance whose check has been critical for a minute
// ([WithDeregisterCriticalAfter]), so a crashed instance that never
// deregistered does not stay in the catalog.
//
// # Re-registration
//
// A Consul agent that restarts with an empty state forgets the services
// registered with it. Each registered instance therefore has a goroutine that
// asks the agent for it every 10 s ([WithReregisterInterval]) and registers it
// again when the agent does not know it; in TTL mode a mark the agent rejects
// for an unknown check does the same at once. These goroutines log what they
// do through [WithLogger] (Info when they register again, Warn when they start
// failing); Register and Deregister return their errors instead.
//
// # Resolving and staleness
//
// [Registry.Resolve] starts one watch per service on first use: a blocking
// query on the health endpoint, for passing instances only, that returns as
// soon as the set changes. Resolve itself reads memory and does not allocate.
//
// When Consul is down, or the agent cannot be reached, the watch retries with
// backoff ([WithBackoff]) and Resolve keeps returning the last set it saw: an
// error never empties it. [Registry.Staleness] says how long that set has gone
// unconfirmed, 0 while the watch is healthy. Registering fails while the agent
// is down; the caller retries (a pier service does so in the background).
//
// # Metrics
//
// For every service it watches, the Registry reports through
// [WithMeterProvider] (the global provider by default), with the attributes
// pier.service and registry="consul": pier.discovery.instances (gauge, the
// instances Resolve returns), pier.discovery.staleness (gauge, seconds, as
// [Registry.Staleness]) and pier.discovery.watch.errors (counter, failed
// queries). Close unregisters the gauges.
//
// # Lifecycle
//
// [New] starts nothing and calls nothing. [Registry.Close] stops every
// goroutine the Registry started and waits for them; it does not deregister,
// so call Deregister first for the instances that should leave.
package consul
