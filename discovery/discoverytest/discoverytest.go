// Package discoverytest holds the conformance suite that every pier registry
// passes: memory, static, DNS and Consul run the same contract, and so can a
// registry of your own.
//
//	func TestConformance(t *testing.T) {
//		discoverytest.Run(t, discoverytest.Suite{
//			New:  func(t *testing.T) discovery.Registry { return myregistry.New(...) },
//			IDs:  true, Tags: true, Meta: true,
//		})
//	}
//
// The tests use service names of their own, fresh for each test, so one registry
// server can serve them all. Registries are eventually consistent, so the tests
// wait for a change to show, up to a generous bound, and log how long it took.
package discoverytest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/discovery"
)

// WaitFor bounds how long a test waits for a change to become visible before it
// fails. It is long because test machines are shared and slow; a registry that
// needs anything near it is broken.
const WaitFor = 10 * time.Second

// Suite describes a registry to [Run].
type Suite struct {
	// New returns the registry one test uses. Its cleanup goes through
	// t.Cleanup.
	New func(t *testing.T) discovery.Registry
	// IDs, Tags and Meta report whether resolved instances carry the ID, tags and
	// metadata they were registered with (DNS, for one, carries none of them).
	// Addresses and service names are always checked.
	IDs, Tags, Meta bool
	// Serve makes every instance a real HTTP server on loopback that answers 200
	// to any request, for registries that check instances' health before
	// resolving them (Consul). Without it, instances have addresses where nothing
	// listens.
	Serve bool
}

// instance returns the instance numbered n of service for s: [Instance], on a
// real server when s.Serve.
func (s Suite) instance(t *testing.T, service string, n int) discovery.Instance {
	t.Helper()
	in := Instance(service, n)
	if s.Serve {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"pass"}`))
		}))
		t.Cleanup(srv.Close)
		in.Addr = strings.TrimPrefix(srv.URL, "http://")
	}
	return in
}

// Run runs the conformance tests against s.
func Run(t *testing.T, s Suite) {
	t.Helper()
	if s.New == nil {
		t.Fatal("discoverytest: Suite.New is nil")
	}
	tests := []struct {
		name string
		run  func(*testing.T, Suite)
	}{
		{"RegisterResolve", testRegisterResolve},
		{"UnknownService", testUnknownService},
		{"SeveralInstances", testSeveralInstances},
		{"Deregister", testDeregister},
		{"ReRegisterUpdates", testReRegisterUpdates},
		{"ServicesAreSeparate", testServicesAreSeparate},
		{"InvalidInstance", testInvalidInstance},
		{"ChangeLatency", testChangeLatency},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, s) })
	}
}

// ServiceName returns a fresh service name, so tests never see each other's
// instances in a shared registry.
func ServiceName(prefix string) string {
	return fmt.Sprintf("%s-%08x", prefix, rand.Uint32())
}

// Instance returns a valid instance of service numbered n, on 127.0.0.1, with
// a tag and metadata.
func Instance(service string, n int) discovery.Instance {
	return discovery.Instance{
		ID:      fmt.Sprintf("%s-%d", service, n),
		Service: service,
		Addr:    fmt.Sprintf("127.0.0.1:%d", 20000+n),
		Tags:    []string{"conformance", fmt.Sprintf("n%d", n)},
		Meta:    map[string]string{"version": fmt.Sprintf("1.%d.0", n)},
	}
}

// WaitResolve resolves service until check accepts the answer (instances and
// error), failing the test after WaitFor, and returns how long that took.
func WaitResolve(tb testing.TB, r discovery.Resolver, service string, what string,
	check func([]discovery.Instance, error) bool) time.Duration {
	tb.Helper()
	start := time.Now()
	deadline := start.Add(WaitFor)
	var last []discovery.Instance
	var lastErr error
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
		last, lastErr = r.Resolve(ctx, service)
		cancel()
		if check(last, lastErr) {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v; last Resolve(%q) = %v, %v", what, WaitFor, service, addrs(last), lastErr)
		}
		t := time.NewTimer(delay)
		<-t.C
	}
}

// Has returns a check for WaitResolve that accepts exactly the instances want,
// by address.
func Has(want ...discovery.Instance) func([]discovery.Instance, error) bool {
	return func(got []discovery.Instance, err error) bool {
		if len(want) == 0 {
			return errors.Is(err, discovery.ErrNoInstances)
		}
		return err == nil && slices.Equal(addrs(got), addrs(want))
	}
}

func addrs(in []discovery.Instance) []string {
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = x.Addr
	}
	slices.Sort(out)
	return out
}

func register(t *testing.T, r discovery.Registrar, ins ...discovery.Instance) {
	t.Helper()
	for _, in := range ins {
		ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
		err := r.Register(ctx, in)
		cancel()
		if err != nil {
			t.Fatalf("Register(%s): %v", in.ID, err)
		}
	}
}

func deregister(t *testing.T, r discovery.Registrar, ins ...discovery.Instance) {
	t.Helper()
	for _, in := range ins {
		ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
		err := r.Deregister(ctx, in)
		cancel()
		if err != nil {
			t.Fatalf("Deregister(%s): %v", in.ID, err)
		}
	}
}

// checkFields compares what the registry keeps of each instance.
func checkFields(t *testing.T, s Suite, got []discovery.Instance, want ...discovery.Instance) {
	t.Helper()
	byAddr := make(map[string]discovery.Instance)
	for _, in := range got {
		byAddr[in.Addr] = in
	}
	for _, w := range want {
		g, ok := byAddr[w.Addr]
		if !ok {
			t.Errorf("instance %s missing from %v", w.Addr, addrs(got))
			continue
		}
		if g.Service != w.Service {
			t.Errorf("instance %s: Service = %q, want %q", w.Addr, g.Service, w.Service)
		}
		if s.IDs && g.ID != w.ID {
			t.Errorf("instance %s: ID = %q, want %q", w.Addr, g.ID, w.ID)
		}
		if s.Tags && !slices.Equal(sorted(g.Tags), sorted(w.Tags)) {
			t.Errorf("instance %s: Tags = %q, want %q", w.Addr, g.Tags, w.Tags)
		}
		if s.Meta {
			for k, v := range w.Meta {
				if g.Meta[k] != v {
					t.Errorf("instance %s: Meta[%q] = %q, want %q", w.Addr, k, g.Meta[k], v)
				}
			}
		}
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func testRegisterResolve(t *testing.T, s Suite) {
	r := s.New(t)
	svc := ServiceName("reg")
	in := s.instance(t, svc, 1)
	register(t, r, in)
	WaitResolve(t, r, svc, "registered instance resolves", Has(in))
	got, _ := r.Resolve(context.Background(), svc)
	checkFields(t, s, got, in)
}

func testUnknownService(t *testing.T, s Suite) {
	r := s.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
	defer cancel()
	got, err := r.Resolve(ctx, ServiceName("nobody"))
	if !errors.Is(err, discovery.ErrNoInstances) || len(got) != 0 {
		t.Fatalf("Resolve(unknown) = %v, %v; want an error wrapping ErrNoInstances", got, err)
	}
}

func testSeveralInstances(t *testing.T, s Suite) {
	r := s.New(t)
	svc := ServiceName("several")
	ins := []discovery.Instance{s.instance(t, svc, 1), s.instance(t, svc, 2), s.instance(t, svc, 3)}
	register(t, r, ins...)
	WaitResolve(t, r, svc, "three instances resolve", Has(ins...))
	got, _ := r.Resolve(context.Background(), svc)
	checkFields(t, s, got, ins...)
}

func testDeregister(t *testing.T, s Suite) {
	r := s.New(t)
	svc := ServiceName("dereg")
	a, b := s.instance(t, svc, 1), s.instance(t, svc, 2)
	register(t, r, a, b)
	WaitResolve(t, r, svc, "both instances resolve", Has(a, b))
	deregister(t, r, a)
	WaitResolve(t, r, svc, "the deregistered instance leaves", Has(b))
	deregister(t, r, b)
	WaitResolve(t, r, svc, "the last instance leaves", Has())
	deregister(t, r, b) // again: not an error
}

func testReRegisterUpdates(t *testing.T, s Suite) {
	r := s.New(t)
	svc := ServiceName("update")
	in := s.instance(t, svc, 1)
	register(t, r, in)
	WaitResolve(t, r, svc, "instance resolves", Has(in))
	moved := in
	moved.Addr = s.instance(t, svc, 99).Addr
	moved.Tags = []string{"moved"}
	moved.Meta = map[string]string{"version": "2.0.0"}
	register(t, r, moved)
	WaitResolve(t, r, svc, "the update replaces the instance, not adds one", Has(moved))
	got, _ := r.Resolve(context.Background(), svc)
	checkFields(t, s, got, moved)
}

func testServicesAreSeparate(t *testing.T, s Suite) {
	r := s.New(t)
	users, orders := ServiceName("users"), ServiceName("orders")
	u, o := s.instance(t, users, 1), s.instance(t, orders, 2)
	register(t, r, u, o)
	WaitResolve(t, r, users, "users resolves to its own", Has(u))
	WaitResolve(t, r, orders, "orders resolves to its own", Has(o))
}

func testInvalidInstance(t *testing.T, s Suite) {
	r := s.New(t)
	svc := ServiceName("invalid")
	bad := map[string]discovery.Instance{
		"empty ID":     {Service: svc, Addr: "127.0.0.1:1"},
		"bad service":  {ID: "x", Service: "Not_A_Label", Addr: "127.0.0.1:1"},
		"no port":      {ID: "x", Service: svc, Addr: "127.0.0.1"},
		"port zero":    {ID: "x", Service: svc, Addr: "127.0.0.1:0"},
		"port too big": {ID: "x", Service: svc, Addr: "127.0.0.1:70000"},
	}
	for name, in := range bad {
		ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
		err := r.Register(ctx, in)
		cancel()
		if err == nil {
			t.Errorf("Register(%s) = nil, want an error", name)
		}
	}
}

// testChangeLatency measures how long a registration takes to reach a resolver
// that is already watching the service, and logs it.
func testChangeLatency(t *testing.T, s Suite) {
	r := s.New(t)
	svc := ServiceName("latency")
	first := s.instance(t, svc, 1)
	register(t, r, first)
	WaitResolve(t, r, svc, "first instance resolves", Has(first))
	second := s.instance(t, svc, 2)
	register(t, r, second)
	d := WaitResolve(t, r, svc, "a new instance reaches a watching resolver", Has(first, second))
	t.Logf("change latency: %v", d)
}

func testConcurrent(t *testing.T, s Suite) {
	r := s.New(t)
	svc := ServiceName("concurrent")
	const n = 8
	ins := make([]discovery.Instance, n)
	for i := range n {
		ins[i] = s.instance(t, svc, i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), WaitFor)
			defer cancel()
			in := ins[i]
			if err := r.Register(ctx, in); err != nil {
				errs <- err
			}
			if _, err := r.Resolve(ctx, svc); err != nil && !errors.Is(err, discovery.ErrNoInstances) {
				errs <- err
			}
			if i%2 == 1 {
				if err := r.Deregister(ctx, in); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var want []discovery.Instance
	for i := 0; i < n; i += 2 {
		want = append(want, ins[i])
	}
	WaitResolve(t, r, svc, "the even instances remain", Has(want...))
}
