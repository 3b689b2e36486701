package dns_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/discoverytest"
	"github.com/pier-go/pier/discovery/dns"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Names in the tests' zone, under testDomain.
const (
	usersName = "users." + testDomain + "."
	usersSRV  = "_http._tcp." + usersName
)

// pod returns the name of the SRV target of a pod of users.
func pod(n int) string { return fmt.Sprintf("pod-%d.%s", n, usersName) }

// newResolver returns a Resolver made with opts, closed when the test ends.
func newResolver(tb testing.TB, opts ...dns.Option) *dns.Resolver {
	tb.Helper()
	r, err := dns.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// fast returns options that point a Resolver at s, under testDomain, with a
// short refresh and backoff, then extra.
func fast(s *dnsServer, extra ...dns.Option) []dns.Option {
	return append([]dns.Option{
		dns.WithResolver(s.resolver()),
		dns.WithDomain(testDomain),
		dns.WithRefresh(20 * time.Millisecond),
		dns.WithBackoff(10*time.Millisecond, 50*time.Millisecond),
	}, extra...)
}

// at returns instances with the given addresses, for discoverytest.Has.
func at(addrs ...string) []discovery.Instance {
	out := make([]discovery.Instance, len(addrs))
	for i, a := range addrs {
		out[i] = discovery.Instance{Addr: a}
	}
	return out
}

// waitUntil polls cond until it holds, failing the test after
// discoverytest.WaitFor, and returns how long that took.
func waitUntil(tb testing.TB, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > discoverytest.WaitFor {
			tb.Fatalf("%s: not within %v", what, discoverytest.WaitFor)
		}
		<-tick.C
	}
	return time.Since(start)
}

func resolve(tb testing.TB, r discovery.Resolver, service string) ([]discovery.Instance, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), discoverytest.WaitFor)
	defer cancel()
	return r.Resolve(ctx, service)
}

func addrsOf(in []discovery.Instance) []string {
	var out []string
	for _, x := range in {
		out = append(out, x.Addr)
	}
	return out
}

func TestRefreshPicksUpChanges(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.setSRV(usersSRV, srvTarget{pod(1), 8001})
	s.setIPs(pod(1), "127.0.0.1")
	s.setIPs(pod(2), "127.0.0.2")
	const refresh = 50 * time.Millisecond
	r := newResolver(t, fast(s, dns.WithRefresh(refresh))...)

	got, err := resolve(t, r, "users")
	want := []discovery.Instance{{ID: "users@127.0.0.1:8001", Service: "users", Addr: "127.0.0.1:8001"}}
	if diff := cmp.Diff(want, got); err != nil || diff != "" {
		t.Fatalf("first Resolve: %v; instances (-want +got):\n%s", err, diff)
	}

	s.setSRV(usersSRV, srvTarget{pod(1), 8001}, srvTarget{pod(2), 8002})
	d := discoverytest.WaitResolve(t, r, "users", "a new SRV record shows", discoverytest.Has(at("127.0.0.1:8001", "127.0.0.2:8002")...))
	t.Logf("a new record showed after %v (refresh %v)", d, refresh)

	s.setSRV(usersSRV, srvTarget{pod(2), 8002})
	d = discoverytest.WaitResolve(t, r, "users", "a removed SRV record goes", discoverytest.Has(at("127.0.0.2:8002")...))
	t.Logf("a removed record went after %v (refresh %v)", d, refresh)
}

func TestKeepsLastKnownGoodWhileDNSFails(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]mode{"SERVFAIL": servFail, "silent server": silent} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.setSRV(usersSRV, srvTarget{pod(1), 8001})
			s.setIPs(pod(1), "127.0.0.1")
			r := newResolver(t, fast(s)...)

			if _, ok := r.Staleness("users"); ok {
				t.Fatal("Staleness of a service never resolved: ok = true")
			}
			if got, err := resolve(t, r, "users"); err != nil || len(got) != 1 {
				t.Fatalf("Resolve = %v, %v", addrsOf(got), err)
			}
			if st, ok := r.Staleness("users"); st != 0 || !ok {
				t.Fatalf("Staleness after a good lookup = %v, %v; want 0, true", st, ok)
			}

			s.setMode(m)
			s.setSRV(usersSRV, srvTarget{pod(2), 8002}) // not served while DNS fails
			s.setIPs(pod(2), "127.0.0.2")
			waitUntil(t, "Staleness grows", func() bool { st, _ := r.Staleness("users"); return st > 0 })
			got, err := resolve(t, r, "users")
			if err != nil || !slices.Equal(addrsOf(got), []string{"127.0.0.1:8001"}) {
				t.Fatalf("Resolve while DNS fails = %v, %v; want the last good answer", addrsOf(got), err)
			}
			st, _ := r.Staleness("users")
			t.Logf("staleness while DNS fails: %v", st)

			s.setMode(answer)
			discoverytest.WaitResolve(t, r, "users", "the answer after DNS recovers", discoverytest.Has(at("127.0.0.2:8002")...))
			waitUntil(t, "Staleness back to 0", func() bool { st, _ := r.Staleness("users"); return st == 0 })
		})
	}
}

func TestFailedFirstLookupIsAnError(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.setMode(servFail)
	r := newResolver(t, fast(s)...)
	_, err := resolve(t, r, "users")
	if err == nil || errors.Is(err, discovery.ErrNoInstances) || !strings.HasPrefix(err.Error(), "dns: ") {
		t.Fatalf("Resolve with no good lookup yet = %v; want the lookup's error, not ErrNoInstances", err)
	}
	if st, ok := r.Staleness("users"); st <= 0 || !ok {
		t.Fatalf("Staleness = %v, %v; want > 0, true", st, ok)
	}
}

// TestAnswers covers what a successful lookup turns into: instances, or
// ErrNoInstances when DNS says there is none.
func TestAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		aMode bool
		setup func(s *dnsServer)
		want  []string // addresses; nil for ErrNoInstances
	}{
		{name: "NXDOMAIN", setup: func(s *dnsServer) {}},
		{name: "no SRV record", setup: func(s *dnsServer) { s.setIPs(usersSRV, "127.0.0.1") }},
		{name: "unavailable", setup: func(s *dnsServer) { s.setSRV(usersSRV, srvTarget{".", 8001}) }},
		{name: "target without address", setup: func(s *dnsServer) { s.setSRV(usersSRV, srvTarget{pod(1), 8001}) }},
		{name: "A mode NXDOMAIN", aMode: true, setup: func(s *dnsServer) {}},
		{
			name: "a target gone, one left",
			setup: func(s *dnsServer) {
				s.setSRV(usersSRV, srvTarget{pod(1), 8001}, srvTarget{pod(2), 8002})
				s.setIPs(pod(2), "127.0.0.2")
			},
			want: []string{"127.0.0.2:8002"},
		},
		{
			name: "port 0 skipped",
			setup: func(s *dnsServer) {
				s.setSRV(usersSRV, srvTarget{pod(1), 0}, srvTarget{pod(2), 8002})
				s.setIPs(pod(1), "127.0.0.1")
				s.setIPs(pod(2), "127.0.0.2")
			},
			want: []string{"127.0.0.2:8002"},
		},
		{
			name: "one target on two ports, a duplicate record",
			setup: func(s *dnsServer) {
				s.setSRV(usersSRV, srvTarget{pod(1), 9000}, srvTarget{pod(1), 8001}, srvTarget{pod(1), 8001})
				s.setIPs(pod(1), "127.0.0.1")
			},
			want: []string{"127.0.0.1:8001", "127.0.0.1:9000"},
		},
		{
			name: "sorted by address",
			setup: func(s *dnsServer) {
				s.setSRV(usersSRV, srvTarget{pod(3), 8001}, srvTarget{pod(1), 8001}, srvTarget{pod(2), 8001})
				s.setIPs(pod(1), "127.0.0.3")
				s.setIPs(pod(2), "127.0.0.1")
				s.setIPs(pod(3), "127.0.0.2")
			},
			want: []string{"127.0.0.1:8001", "127.0.0.2:8001", "127.0.0.3:8001"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			tt.setup(s)
			opts := fast(s)
			if tt.aMode {
				opts = append(opts, dns.WithPort(8080))
			}
			r := newResolver(t, opts...)
			got, err := resolve(t, r, "users")
			if tt.want == nil {
				if !errors.Is(err, discovery.ErrNoInstances) || got != nil || !strings.HasPrefix(err.Error(), "dns: ") {
					t.Fatalf("Resolve = %v, %v; want a dns: error wrapping ErrNoInstances", addrsOf(got), err)
				}
			} else if err != nil || !slices.Equal(addrsOf(got), tt.want) {
				t.Fatalf("Resolve = %v, %v; want %v", addrsOf(got), err, tt.want)
			}
			// An answer, even "none", is no failure.
			if st, ok := r.Staleness("users"); st != 0 || !ok {
				t.Fatalf("Staleness = %v, %v; want 0, true", st, ok)
			}
		})
	}
}

func TestAAAA(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(s *dnsServer)
		opts  []dns.Option
		want  []string
	}{
		{
			name:  "A mode",
			setup: func(s *dnsServer) { s.setIPs(usersName, "::1", "127.0.0.1") },
			opts:  []dns.Option{dns.WithPort(8080)},
			want:  []string{"127.0.0.1:8080", "[::1]:8080"},
		},
		{
			name: "SRV target",
			setup: func(s *dnsServer) {
				s.setSRV(usersSRV, srvTarget{pod(1), 9000})
				s.setIPs(pod(1), "::1")
			},
			want: []string{"[::1]:9000"},
		},
		{
			name: "dual-stack SRV target",
			setup: func(s *dnsServer) {
				s.setSRV(usersSRV, srvTarget{pod(1), 9000})
				s.setIPs(pod(1), "::1", "127.0.0.1")
			},
			want: []string{"127.0.0.1:9000", "[::1]:9000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			tt.setup(s)
			r := newResolver(t, fast(s, tt.opts...)...)
			got, err := resolve(t, r, "users")
			if err != nil || !slices.Equal(addrsOf(got), tt.want) {
				t.Fatalf("Resolve = %v, %v; want %v", addrsOf(got), err, tt.want)
			}
		})
	}
}

// TestQueryNames checks the exact names asked of the server.
func TestQueryNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  []dns.Option
		setup func(s *dnsServer)
		want  []string // every query, exactly
	}{
		{
			name: "SRV under a domain",
			opts: []dns.Option{dns.WithDomain("default.svc.cluster.local")},
			setup: func(s *dnsServer) {
				s.setSRV("_http._tcp.users.default.svc.cluster.local", srvTarget{"pod-1.users.default.svc.cluster.local", 8080})
				s.setIPs("pod-1.users.default.svc.cluster.local", "127.0.0.1")
			},
			want: []string{
				"A pod-1.users.default.svc.cluster.local.",
				"AAAA pod-1.users.default.svc.cluster.local.",
				"SRV _http._tcp.users.default.svc.cluster.local.",
			},
		},
		{
			name: "named port and protocol, rooted domain",
			opts: []dns.Option{dns.WithDomain("shop.svc.example."), dns.WithSRV("grpc-api", "udp")},
			setup: func(s *dnsServer) {
				s.setSRV("_grpc-api._udp.users.shop.svc.example", srvTarget{"10-0-0-1.users.shop.svc.example", 8080})
				s.setIPs("10-0-0-1.users.shop.svc.example", "127.0.0.1")
			},
			want: []string{
				"A 10-0-0-1.users.shop.svc.example.",
				"AAAA 10-0-0-1.users.shop.svc.example.",
				"SRV _grpc-api._udp.users.shop.svc.example.",
			},
		},
		{
			name:  "A mode under a domain",
			opts:  []dns.Option{dns.WithDomain("default.svc.cluster.local"), dns.WithPort(8080)},
			setup: func(s *dnsServer) { s.setIPs("users.default.svc.cluster.local", "127.0.0.1") },
			want:  []string{"A users.default.svc.cluster.local.", "AAAA users.default.svc.cluster.local."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			tt.setup(s)
			r := newResolver(t, append([]dns.Option{dns.WithResolver(s.resolver())}, tt.opts...)...)
			if got, err := resolve(t, r, "users"); err != nil || len(got) != 1 {
				t.Fatalf("Resolve = %v, %v", addrsOf(got), err)
			}
			got := s.queries()
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("queries (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNoDomainUsesTheNameAsGiven checks that without WithDomain the name goes
// to the resolver as it is; resolv.conf's search list may add queries of its
// own, so only the presence of the bare name is checked.
func TestNoDomainUsesTheNameAsGiven(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.setSRV("_http._tcp.users.", srvTarget{"pod-1.users.", 8080})
	s.setIPs("pod-1.users.", "127.0.0.1")
	r := newResolver(t, dns.WithResolver(s.resolver()))
	if got, err := resolve(t, r, "users"); err != nil || !slices.Equal(addrsOf(got), []string{"127.0.0.1:8080"}) {
		t.Fatalf("Resolve = %v, %v", addrsOf(got), err)
	}
	if !s.wasQueried("SRV", "_http._tcp.users.") {
		t.Errorf("no SRV query for _http._tcp.users.; queries: %v", s.queries())
	}
}

func TestInvalidServiceNameMakesNoQuery(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	r := newResolver(t, fast(s)...)
	for _, name := range []string{"", "Users", "users.evil.example", "-users", strings.Repeat("a", 64)} {
		if got, err := resolve(t, r, name); err == nil || errors.Is(err, discovery.ErrNoInstances) {
			t.Errorf("Resolve(%q) = %v, %v; want an invalid-name error", name, got, err)
		}
	}
	if q := s.queries(); len(q) != 0 {
		t.Errorf("queries for invalid names: %v", q)
	}
}

func TestLargeAnswerOverTCP(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	const n = 40 // SRV records: about 2 KB, past the UDP limit
	targets := make([]srvTarget, n)
	var want []string
	for i := range n {
		targets[i] = srvTarget{pod(i), uint16(9000 + i)}
		s.setIPs(pod(i), fmt.Sprintf("127.0.1.%d", i))
		want = append(want, fmt.Sprintf("127.0.1.%d:%d", i, 9000+i))
	}
	slices.Sort(want)
	s.setSRV(usersSRV, targets...)
	r := newResolver(t, fast(s)...)
	got, err := resolve(t, r, "users")
	if err != nil || !slices.Equal(addrsOf(got), want) {
		t.Fatalf("Resolve = %d instances, %v; want %d", len(got), err, n)
	}
	if s.tcpQueries() == 0 {
		t.Error("no query over TCP: the answer was not truncated over UDP")
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	invalid := []struct {
		name string
		opts []dns.Option
		want string // in the error
	}{
		{"nil option", []dns.Option{nil}, "option 0 is nil"},
		{"nil resolver", []dns.Option{dns.WithResolver(nil)}, "WithResolver(nil)"},
		{"negative refresh", []dns.Option{dns.WithRefresh(-time.Second)}, "negative interval"},
		{"port 0", []dns.Option{dns.WithPort(0)}, "WithPort(0)"},
		{"port too big", []dns.Option{dns.WithPort(65536)}, "WithPort(65536)"},
		{"empty port name", []dns.Option{dns.WithSRV("", "tcp")}, "port name"},
		{"underscore", []dns.Option{dns.WithSRV("_http", "tcp")}, "without the underscore"},
		{"empty protocol", []dns.Option{dns.WithSRV("http", "")}, "protocol"},
		{"bad port name", []dns.Option{dns.WithSRV("http api", "tcp")}, "port name"},
		{"SRV and port", []dns.Option{dns.WithSRV("http", "tcp"), dns.WithPort(80)}, "both given"},
		{"negative backoff", []dns.Option{dns.WithBackoff(-1, 0)}, "negative backoff"},
		{"max below min", []dns.Option{dns.WithBackoff(time.Second, time.Millisecond)}, "max below min"},
		{"max below default min", []dns.Option{dns.WithBackoff(0, time.Millisecond)}, "max below min"},
		{"domain with a leading dot", []dns.Option{dns.WithDomain(".cluster.local")}, `label ""`},
		{"domain with an empty label", []dns.Option{dns.WithDomain("svc..local")}, `label ""`},
		{"domain with a space", []dns.Option{dns.WithDomain("my domain")}, `label "my domain"`},
		{"domain too long", []dns.Option{dns.WithDomain(strings.Repeat("abcdefgh.", 20) + "local")}, "too long"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := dns.New(tt.opts...)
			if err == nil {
				_ = r.Close()
				t.Fatal("New = nil error")
			}
			if !strings.HasPrefix(err.Error(), "dns: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v; want a dns: error with %q", err, tt.want)
			}
		})
	}

	t.Run("every invalid option is reported", func(t *testing.T) {
		t.Parallel()
		_, err := dns.New(dns.WithPort(0), dns.WithRefresh(-1))
		if err == nil || !strings.Contains(err.Error(), "WithPort(0)") || !strings.Contains(err.Error(), "WithRefresh(-1ns)") {
			t.Fatalf("New: %v; want both options named", err)
		}
	})

	valid := map[string][]dns.Option{
		"defaults":       nil,
		"zero values":    {dns.WithRefresh(0), dns.WithBackoff(0, 0), dns.WithDomain("")},
		"rooted domain":  {dns.WithDomain("cluster.local.")},
		"lowest port":    {dns.WithPort(1)},
		"highest port":   {dns.WithPort(65535)},
		"explicit SRV":   {dns.WithSRV("metrics", "tcp"), dns.WithDomain("ns.svc.cluster.local")},
		"backoff order":  {dns.WithBackoff(time.Second, 0)},
		"resolver given": {dns.WithResolver(&net.Resolver{PreferGo: true})},
	}
	for name, opts := range valid {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := dns.New(opts...)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.setSRV(usersSRV, srvTarget{pod(1), 8001})
	s.setIPs(pod(1), "127.0.0.1")
	r, err := dns.New(fast(s)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resolve(t, r, "users"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := r.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	for _, svc := range []string{"users", "orders"} { // resolved before, and not
		if got, err := resolve(t, r, svc); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Resolve(%q) after Close = %v, %v; want an error", svc, addrsOf(got), err)
		}
	}
}

// TestCloseEndsAWaitingFirstResolve is the regression test for a Resolve
// without a deadline that waited for ever for a first answer once Close had
// stopped the lookup.
func TestCloseEndsAWaitingFirstResolve(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.setMode(silent)
	r, err := dns.New(dns.WithResolver(s.resolver()), dns.WithDomain(testDomain))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Resolve(context.Background(), "users")
		done <- err
	}()
	waitUntil(t, "the server sees the query", func() bool { return s.wasQueried("SRV", usersSRV) })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	timeout := time.NewTimer(discoverytest.WaitFor)
	defer timeout.Stop()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Resolve ended by Close = %v, want a closed error", err)
		}
	case <-timeout.C:
		t.Fatalf("Resolve still waiting %v after Close", discoverytest.WaitFor)
	}
}

// TestFirstResolveHonoursContext checks that the first Resolve of a service
// returns with its context when DNS does not answer, and that Close then stops
// the lookup in flight (goleak checks that nothing is left running).
func TestFirstResolveHonoursContext(t *testing.T) {
	t.Parallel()
	for _, aMode := range []bool{false, true} {
		t.Run(fmt.Sprintf("A mode %v", aMode), func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.setMode(silent)
			opts := []dns.Option{dns.WithResolver(s.resolver()), dns.WithDomain(testDomain)}
			if aMode {
				opts = append(opts, dns.WithPort(8080))
			}
			r, err := dns.New(opts...)
			if err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := r.Resolve(ctx, "users"); !errors.Is(err, context.Canceled) {
				t.Errorf("Resolve with a cancelled context = %v, want context.Canceled", err)
			}
			ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, err := r.Resolve(ctx, "orders"); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Resolve with a 20ms deadline = %v, want context.DeadlineExceeded", err)
			}
			waitUntil(t, "the server sees the queries", func() bool { return len(s.queries()) >= 2 })

			start := time.Now()
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("Close with lookups in flight took %v", time.Since(start))
		})
	}
}

func BenchmarkResolve(b *testing.B) {
	s := newServer(b)
	s.setSRV(usersSRV, srvTarget{pod(1), 8001}, srvTarget{pod(2), 8002}, srvTarget{pod(3), 8003})
	for i := 1; i <= 3; i++ {
		s.setIPs(pod(i), fmt.Sprintf("127.0.0.%d", i))
	}
	r := newResolver(b, dns.WithResolver(s.resolver()), dns.WithDomain(testDomain))
	ctx := context.Background()
	if got, err := r.Resolve(ctx, "users"); err != nil || len(got) != 3 {
		b.Fatalf("Resolve = %v, %v", addrsOf(got), err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(ctx, "users"); err != nil {
			b.Fatal(err)
		}
	}
}
