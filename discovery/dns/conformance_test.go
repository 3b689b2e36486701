package dns_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/discoverytest"
	"github.com/pier-go/pier/discovery/dns"
)

// testDomain is the domain of the tests' zones.
const testDomain = "default.svc.cluster.local"

// aModePort is the one port of A/AAAA mode in the conformance suite.
const aModePort = 8080

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, aMode := range []bool{false, true} {
		name := "SRV"
		if aMode {
			name = "A"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			discoverytest.Run(t, discoverytest.Suite{
				New: func(t *testing.T) discovery.Registry { return newZoneRegistry(t, aMode) },
			})
		})
	}
}

// zoneRegistry is a discovery.Registry for the conformance suite: Register and
// Deregister write the zone of an in-process DNS server, the way the endpoints
// controller does in Kubernetes, and Resolve is a dns.Resolver's.
//
// In SRV mode an instance is an SRV record _http._tcp.<service>.<domain> with
// its port, whose target <id>.<service>.<domain> has an A or AAAA record with
// its IP. In A/AAAA mode the records carry no port and the Resolver puts every
// address on one port; so that the suite's instances, which share 127.0.0.1 and
// differ by port, stay apart, each registered address gets an IP of its own in
// 127.1.0.0/16 in the zone, and Resolve maps ip:8080 back to that address. An
// answer the mapping does not know stays as it is, and fails the suite.
type zoneRegistry struct {
	r      *dns.Resolver
	server *dnsServer
	aMode  bool

	mu     sync.Mutex
	byID   map[string]discovery.Instance
	ipOf   map[string]netip.Addr // A/AAAA mode: registered address -> its IP in the zone
	addrOf map[netip.Addr]string
}

func newZoneRegistry(t *testing.T, aMode bool) *zoneRegistry {
	t.Helper()
	s := newServer(t)
	opts := []dns.Option{
		dns.WithResolver(s.resolver()),
		dns.WithDomain(testDomain),
		dns.WithRefresh(20 * time.Millisecond),
		dns.WithBackoff(10*time.Millisecond, 100*time.Millisecond),
	}
	if aMode {
		opts = append(opts, dns.WithPort(aModePort))
	}
	r := newResolver(t, opts...)
	return &zoneRegistry{
		r: r, server: s, aMode: aMode,
		byID: make(map[string]discovery.Instance),
		ipOf: make(map[string]netip.Addr), addrOf: make(map[netip.Addr]string),
	}
}

func (z *zoneRegistry) Register(ctx context.Context, in discovery.Instance) error {
	if err := in.Validate(); err != nil {
		return err
	}
	if _, err := netip.ParseAddrPort(in.Addr); err != nil {
		return fmt.Errorf("zone registry: %s: want an IP address: %w", in.ID, err)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.aMode {
		if _, ok := z.ipOf[in.Addr]; !ok {
			n := len(z.ipOf) + 1
			ip := netip.AddrFrom4([4]byte{127, 1, byte(n >> 8), byte(n)})
			z.ipOf[in.Addr], z.addrOf[ip] = ip, in.Addr
		}
	}
	z.byID[in.ID] = in // replaces the instance with that ID, whatever its service
	z.publish()
	return nil
}

func (z *zoneRegistry) Deregister(ctx context.Context, in discovery.Instance) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	delete(z.byID, in.ID)
	z.publish()
	return nil
}

// publish writes the zone of every registered instance; z.mu is held.
func (z *zoneRegistry) publish() {
	srv := make(map[string][]srvTarget)
	ips := make(map[string][]netip.Addr)
	for _, in := range z.byID {
		ap := netip.MustParseAddrPort(in.Addr)
		name := in.Service + "." + testDomain + "."
		if z.aMode {
			ips[name] = append(ips[name], z.ipOf[in.Addr])
			continue
		}
		target := label(in.ID) + "." + name
		srvName := "_http._tcp." + name
		srv[srvName] = append(srv[srvName], srvTarget{target: target, port: ap.Port()})
		ips[target] = append(ips[target], ap.Addr())
	}
	z.server.replace(srv, ips)
}

// label returns id if it can be a DNS label, else a hash of it that can.
func label(id string) string {
	if discovery.ValidateServiceName(id) == nil {
		return id
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return fmt.Sprintf("id-%016x", h.Sum64())
}

func (z *zoneRegistry) Resolve(ctx context.Context, service string) ([]discovery.Instance, error) {
	got, err := z.r.Resolve(ctx, service)
	if err != nil || !z.aMode {
		return got, err
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	out := make([]discovery.Instance, len(got))
	for i, in := range got {
		out[i] = in
		if ap, err := netip.ParseAddrPort(in.Addr); err == nil && ap.Port() == aModePort {
			if addr, ok := z.addrOf[ap.Addr()]; ok {
				out[i].Addr = addr
			}
		}
	}
	return out, nil
}
