// Package dns finds the instances of services in DNS: SRV records, or A/AAAA
// records on a fixed port, as Kubernetes serves them for headless Services. Its
// [Resolver] is a [discovery.Resolver] and nothing more: in Kubernetes the
// endpoints controller, not the service, decides which pods DNS lists, so
// there is nothing to register.
//
//	r, err := dns.New(dns.WithDomain("default.svc.cluster.local"))
//	if err != nil {
//		return err
//	}
//	defer r.Close()
//	instances, err := r.Resolve(ctx, "users") // from memory, after the first lookup
//
// # Kubernetes headless services
//
// A headless Service (clusterIP: None) has no virtual IP: its DNS name lists
// its ready pods. For the Service users in the namespace default, with a port
// named http over TCP, the cluster DNS answers
//
//	_http._tcp.users.default.svc.cluster.local.  SRV   0 50 8080 10-1-2-3.users.default.svc.cluster.local.
//	10-1-2-3.users.default.svc.cluster.local.    A     10.1.2.3
//	users.default.svc.cluster.local.             A     10.1.2.3
//
// with one SRV record and one A (or AAAA) record per ready pod; an SRV target
// is the pod's hostname when it has one. In SRV mode, the default, the
// Resolver looks up _<port>._<proto>.<service>.<namespace>.svc.cluster.local
// ([WithSRV] names the port and protocol), then the addresses of each target,
// and makes an instance of every address on its record's port; priorities and
// weights are ignored. In A/AAAA mode ([WithPort]) it looks up the service's
// name itself and puts every address on the one port given: for Services whose
// port has no name, or DNS servers without SRV records.
//
// [WithDomain] completes the service's name, and makes it fully qualified;
// without it the name is given to the resolver as it is, and the search list of
// resolv.conf completes it (in a pod, with the pod's own namespace first).
//
// Each instance has the ID "service@host:port", the Service asked for and the
// Addr host:port, sorted by Addr; DNS has no tags or metadata.
//
// # Refresh
//
// Resolve never waits for DNS once a service has been resolved: each service
// has a goroutine that looks it up again every refresh interval ([WithRefresh],
// 5 s by default) and Resolve reads its last answer. The interval is below the
// TTL of cluster DNS answers (30 s in the Corefile Kubernetes installs, 5 s in
// CoreDNS's own default), so a change reaches callers within one interval after
// the DNS server serves it, and up to the TTL plus one interval after the
// endpoints change. An instance that stops therefore keeps receiving calls for
// that long: the client's outlier ejection covers that window, and a service
// found this way should drain for at least as long before it stops.
//
// # When DNS fails
//
// An answer that the service has no records (NXDOMAIN, or no record of the
// type) is an answer: Resolve then returns an error wrapping
// [discovery.ErrNoInstances]. A lookup that fails (a timeout, SERVFAIL, an
// unreachable server) changes nothing: Resolve keeps serving the last good
// answer, [Resolver.Staleness] tells for how long, and the lookup is tried
// again after a backoff ([WithBackoff]) until it succeeds. Each lookup is
// bounded by a timeout of at most 5 s. Only while no lookup of a service has
// ever succeeded does Resolve return the failure.
//
// # Metrics
//
// For every service it resolves, the Resolver reports through
// [WithMeterProvider] (the global provider by default), with the attributes
// pier.service and registry="dns": pier.discovery.instances (gauge, the
// instances Resolve returns), pier.discovery.staleness (gauge, seconds, as
// [Resolver.Staleness]) and pier.discovery.watch.errors (counter, failed
// lookups).
//
// A Resolver's goroutines end, and its gauges are unregistered, with
// [Resolver.Close].
package dns
