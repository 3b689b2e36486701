package consul_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/consul"
	"github.com/pier-go/pier/discovery/discoverytest"
)

func TestConformance(t *testing.T) {
	a := sharedAgent(t)
	modes := []struct {
		name string
		opts []consul.Option
	}{
		{"HTTP", nil},
		{"TTL", []consul.Option{consul.WithTTL(3 * time.Second)}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			discoverytest.Run(t, discoverytest.Suite{
				New: func(t *testing.T) discovery.Registry {
					return newRegistry(t, a.client(t), mode.opts...)
				},
				IDs: true, Tags: true, Meta: true, Serve: true,
			})
		})
	}
}

// readyServer is an instance that answers 200 on /health/ready and 404
// elsewhere, and counts the checks it answered.
type readyServer struct {
	addr   string
	checks atomic.Int64
}

func newReadyServer(t *testing.T) *readyServer {
	t.Helper()
	s := new(readyServer)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		s.checks.Add(1)
		_, _ = w.Write([]byte("ready\n"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.addr = strings.TrimPrefix(srv.URL, "http://")
	return s
}

// agentCheck returns the check of the instance id as the agent sees it: the
// catalog gets a check's output only when its status changes or every few
// minutes, the agent at every run.
func agentCheck(client *api.Client, id string) (*api.AgentCheck, error) {
	checks, err := client.Agent().Checks()
	if err != nil {
		return nil, err
	}
	for _, c := range checks {
		if c.ServiceID == id {
			return c, nil
		}
	}
	return nil, fmt.Errorf("the agent has no check for %s", id)
}

// checkRan is a condition for waitUntil: the HTTP check of id has run and
// seen 200 from the instance (a check only starts passing, see Register).
func checkRan(client *api.Client, id string) func() error {
	return func() error {
		c, err := agentCheck(client, id)
		if err != nil {
			return err
		}
		if c.Status != api.HealthPassing || !strings.Contains(c.Output, ": 200 OK") {
			return fmt.Errorf("check %s is %s with output %q", c.CheckID, c.Status, c.Output)
		}
		return nil
	}
}

func TestRegisterPutsAPassingInstanceInTheCatalog(t *testing.T) {
	t.Parallel()
	a := sharedAgent(t)
	client := a.client(t)
	r := newRegistry(t, client, consul.WithCheckInterval(time.Second))
	srv := newReadyServer(t)
	svc := discoverytest.ServiceName("catalog")
	in := discovery.Instance{ID: svc + "-1", Service: svc, Addr: srv.addr,
		Tags: []string{"v1", "blue"}, Meta: map[string]string{"version": "1.0.0"}}

	start := time.Now()
	register(t, r, in)
	deregisterAtEnd(t, r, in)
	waitUntil(t, "instance in the catalog", func() error {
		ss, _, err := client.Catalog().Service(svc, "", nil)
		if err != nil || len(ss) != 1 {
			return fmt.Errorf("catalog has %d instances (%v)", len(ss), err)
		}
		s := ss[0]
		if got := fmt.Sprintf("%s %s %s:%d %v %v", s.ServiceID, s.ServiceName, s.ServiceAddress, s.ServicePort, s.ServiceTags, s.ServiceMeta); got != fmt.Sprintf("%s %s %s %v %v", in.ID, in.Service, in.Addr, in.Tags, in.Meta) {
			t.Fatalf("catalog entry = %s, want the registered instance %+v", got, in)
		}
		return nil
	})
	inCatalog := time.Since(start)
	waitUntil(t, "the HTTP check passes", checkRan(client, in.ID))
	passing := time.Since(start)

	// The agent reports neither the check's URL nor its timings, but the
	// check's output names the URL it requested.
	c, err := agentCheck(client, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if url := "http://" + in.Addr + consul.DefaultHealthPath; c.Type != "http" || !strings.Contains(c.Output, url) {
		t.Errorf("check of type %q with output %q, want an http check of %s", c.Type, c.Output, url)
	}
	if srv.checks.Load() == 0 {
		t.Error("the instance saw no request on /health/ready")
	}
	t.Logf("in the catalog, passing, after %v; the first run of its HTTP check passed after %v", inCatalog, passing)
}

func TestResolveSeesANewInstanceThroughABlockingQuery(t *testing.T) {
	t.Parallel()
	a := sharedAgent(t)
	// A 10-minute wait: only a blocking query that wakes on the change can
	// deliver it within the test's bound.
	r := newRegistry(t, a.client(t), consul.WithWaitTime(consul.MaxWaitTime))
	svc := discoverytest.ServiceName("blocking")
	first := discovery.Instance{ID: svc + "-1", Service: svc, Addr: newReadyServer(t).addr}
	register(t, r, first)
	deregisterAtEnd(t, r, first)
	discoverytest.WaitResolve(t, r, svc, "first instance resolves", discoverytest.Has(first))

	second := discovery.Instance{ID: svc + "-2", Service: svc, Addr: newReadyServer(t).addr}
	start := time.Now()
	register(t, r, second)
	deregisterAtEnd(t, r, second)
	d := discoverytest.WaitResolve(t, r, svc, "the new instance reaches the watching resolver", discoverytest.Has(first, second))
	t.Logf("a registration reached the watching resolver %v after Register began (%v after it returned)", time.Since(start), d)
	if s, ok := r.Staleness(svc); !ok || s != 0 {
		t.Errorf("Staleness = %v, %v; want 0, true", s, ok)
	}
}

func TestResolveFiltersByTags(t *testing.T) {
	t.Parallel()
	a := sharedAgent(t)
	client := a.client(t)
	all := newRegistry(t, client)
	canary := newRegistry(t, client, consul.WithTags("canary"))
	canaryV2 := newRegistry(t, client, consul.WithTags("canary", "v2"))
	svc := discoverytest.ServiceName("tags")
	plain := discovery.Instance{ID: svc + "-1", Service: svc, Addr: newReadyServer(t).addr, Tags: []string{"v2"}}
	c1 := discovery.Instance{ID: svc + "-2", Service: svc, Addr: newReadyServer(t).addr, Tags: []string{"canary"}}
	c2 := discovery.Instance{ID: svc + "-3", Service: svc, Addr: newReadyServer(t).addr, Tags: []string{"canary", "v2"}}
	for _, in := range []discovery.Instance{plain, c1, c2} {
		register(t, all, in)
		deregisterAtEnd(t, all, in)
	}
	discoverytest.WaitResolve(t, all, svc, "no filter: every instance", discoverytest.Has(plain, c1, c2))
	discoverytest.WaitResolve(t, canary, svc, "canary: the canaries", discoverytest.Has(c1, c2))
	discoverytest.WaitResolve(t, canaryV2, svc, "canary and v2: the one with both", discoverytest.Has(c2))
}

// TestResolveDropsAKilledProcess registers a real process, kills it with
// SIGKILL (no deregistration, no goodbye), and waits for Consul's HTTP check to
// take it out of the resolved set, beside an instance that stays.
func TestResolveDropsAKilledProcess(t *testing.T) {
	t.Parallel()
	a := sharedAgent(t)
	client := a.client(t)
	r := newRegistry(t, client, consul.WithCheckInterval(time.Second), consul.WithCheckTimeout(500*time.Millisecond))
	svc := discoverytest.ServiceName("death")
	child := startHelperProcess(t)
	doomed := discovery.Instance{ID: svc + "-child", Service: svc, Addr: child.addr}
	healthy := discovery.Instance{ID: svc + "-healthy", Service: svc, Addr: newReadyServer(t).addr}
	register(t, r, doomed, healthy)
	deregisterAtEnd(t, r, doomed)
	deregisterAtEnd(t, r, healthy)
	discoverytest.WaitResolve(t, r, svc, "both instances resolve", discoverytest.Has(doomed, healthy))
	waitUntil(t, "the child's HTTP check ran", checkRan(client, doomed.ID))

	start := time.Now()
	child.kill(t)
	critical := waitUntil(t, "the child's check goes critical", func() error {
		c, err := agentCheck(client, doomed.ID)
		if err != nil {
			return err
		}
		if c.Status != api.HealthCritical {
			return fmt.Errorf("check is %s", c.Status)
		}
		return nil
	})
	discoverytest.WaitResolve(t, r, svc, "the killed instance leaves the set, the healthy one stays", discoverytest.Has(healthy))
	t.Logf("after SIGKILL: critical within %v, out of Resolve within %v (check interval 1s)", critical, time.Since(start))
}

func TestResolveKeepsTheLastSetWhileTheAgentIsDown(t *testing.T) {
	t.Parallel()
	a := startAgent(t, nil)
	logs := new(syncBuffer)
	r := newRegistry(t, a.client(t),
		consul.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
		consul.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	svc := discoverytest.ServiceName("down")
	ins := []discovery.Instance{
		{ID: svc + "-1", Service: svc, Addr: newReadyServer(t).addr},
		{ID: svc + "-2", Service: svc, Addr: newReadyServer(t).addr},
	}
	register(t, r, ins...)
	discoverytest.WaitResolve(t, r, svc, "both instances resolve", discoverytest.Has(ins...))
	if s, ok := r.Staleness(svc); !ok || s != 0 {
		t.Fatalf("Staleness with the agent up = %v, %v; want 0, true", s, ok)
	}

	a.stop()
	waitUntil(t, "Staleness > 0", func() error {
		if s, _ := r.Staleness(svc); s <= 0 {
			return fmt.Errorf("Staleness = %v", s)
		}
		return nil
	})
	// Several failed fetches later, the set is still the last one seen.
	waitUntil(t, "three failed watches logged", func() error {
		if n := failuresLogged(t, logs, svc); n < 3 {
			return fmt.Errorf("%d failures logged", n)
		}
		return nil
	})
	got, err := r.Resolve(context.Background(), svc)
	if !discoverytest.Has(ins...)(got, err) {
		t.Fatalf("Resolve with the agent down = %v, %v; want the last-known set %v", got, err, ins)
	}
	s, _ := r.Staleness(svc)
	t.Logf("agent down: Resolve still returns %d instances, staleness %v", len(got), s)

	// Register and Deregister report the agent's absence.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	extra := discovery.Instance{ID: svc + "-3", Service: svc, Addr: "127.0.0.1:1"}
	if err := r.Register(ctx, extra); err == nil || !strings.HasPrefix(err.Error(), `consul: register "`+extra.ID+`": `) {
		t.Errorf("Register with the agent down = %v, want a consul: register error", err)
	}
	if err := r.Deregister(ctx, ins[0]); err == nil {
		t.Error("Deregister with the agent down = nil, want an error")
	}
}

// failuresLogged returns the highest failure count of the watch of service
// logged to logs.
func failuresLogged(tb testing.TB, logs *syncBuffer, service string) int {
	tb.Helper()
	n := 0
	for _, line := range bytes.Split([]byte(logs.String()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var l struct {
			Msg      string
			Service  string
			Failures int
		}
		if err := json.Unmarshal(line, &l); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		if strings.HasPrefix(l.Msg, "consul: watch failing") && l.Service == service {
			n = max(n, l.Failures)
		}
	}
	return n
}

// TestRegistersAgainWhenTheAgentRestartsEmpty stops the agent an instance is
// registered with and starts a new, empty one on the same ports, which the
// same client reaches: the Registry must register the instance again.
func TestRegistersAgainWhenTheAgentRestartsEmpty(t *testing.T) {
	t.Parallel()
	modes := []struct {
		name string
		opts []consul.Option
	}{
		// Confirmation finds the instance missing.
		{"HTTP", []consul.Option{consul.WithReregisterInterval(200 * time.Millisecond)}},
		// The TTL mark finds the check missing, long before a confirmation.
		{"TTL", []consul.Option{consul.WithTTL(time.Second), consul.WithReregisterInterval(time.Hour)}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			first := startAgent(t, nil)
			client := first.client(t)
			logs := new(syncBuffer)
			opts := append([]consul.Option{
				consul.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
				consul.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
			}, mode.opts...)
			r := newRegistry(t, client, opts...)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("registry logs:\n%s", logs)
				}
			})
			svc := discoverytest.ServiceName("restart")
			in := discovery.Instance{ID: svc + "-1", Service: svc, Addr: newReadyServer(t).addr}
			register(t, r, in)
			discoverytest.WaitResolve(t, r, svc, "instance resolves", discoverytest.Has(in))

			ports := *first.srv.Config.Ports
			first.stop()
			start := time.Now()
			second := startAgent(t, &ports)
			if second.srv.HTTPAddr != first.srv.HTTPAddr {
				t.Fatalf("new agent on %s, want the first one's address %s", second.srv.HTTPAddr, first.srv.HTTPAddr)
			}
			startup := time.Since(start)
			d := waitUntil(t, "the instance is registered with the new agent", func() error {
				_, _, err := client.Agent().Service(in.ID, nil)
				return err
			})
			// The set never emptied (the watch kept it while the agent was
			// down); now the new agent confirms it.
			waitUntil(t, "the new agent's answer has the instance", func() error {
				got, err := r.Resolve(context.Background(), svc)
				if s, _ := r.Staleness(svc); s != 0 || !discoverytest.Has(in)(got, err) {
					return fmt.Errorf("Resolve = %v, %v with staleness %v", got, err, s)
				}
				return nil
			})
			if !strings.Contains(logs.String(), `"msg":"consul: registered again"`) {
				t.Errorf("no \"registered again\" log line in:\n%s", logs)
			}
			t.Logf("new agent up in %v; instance registered again %v later", startup, d)
		})
	}
}

// TestRegisterFailsWithinTheContextDeadline registers with an agent that
// accepts connections and never answers.
func TestRegisterFailsWithinTheContextDeadline(t *testing.T) {
	t.Parallel()
	addr, accepted := blackHole(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	client, err := api.NewClient(&api.Config{Address: addr, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, client)
	in := discoverytest.Instance("users", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = r.Register(ctx, in)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), `consul: register "users-1": `) {
		t.Fatalf("Register = %v, want a consul: register error wrapping context.DeadlineExceeded", err)
	}

	// A Deregister of the same ID honours its own deadline while a Register
	// of that ID is still waiting for the agent.
	regCtx, regCancel := context.WithCancel(context.Background())
	defer regCancel()
	registered := make(chan error, 1)
	go func() { registered <- r.Register(regCtx, in) }()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for n := 0; n < 2; n++ { // the first Register's connection, then this one's
		select {
		case <-accepted:
		case <-timer.C:
			t.Fatal("the second Register never reached the agent")
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Deregister(ctx, in); !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), `consul: deregister "users-1": `) {
		t.Fatalf("Deregister = %v, want a consul: deregister error wrapping context.DeadlineExceeded", err)
	}
	select {
	case err := <-registered:
		t.Fatalf("Register returned (%v) before its context ended", err)
	default:
	}
	regCancel()
	if err := <-registered; !errors.Is(err, context.Canceled) {
		t.Fatalf("Register = %v, want an error wrapping context.Canceled", err)
	}
}

// TestRegisterFailsOnAnAgentThatRefuses registers with an agent that answers
// an error: the error comes back, with the agent's words.
func TestRegisterFailsOnAnAgentThatRefuses(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Permission denied: token with AccessorID '' lacks permission 'service:write'", http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	r := newRegistry(t, fakeClient(t, srv))
	err := r.Register(context.Background(), discoverytest.Instance("users", 1))
	var se api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.HasPrefix(err.Error(), `consul: register "users-1": `) {
		t.Fatalf("Register = %v, want a consul: register error wrapping the agent's 403", err)
	}
}

func TestRegisterRejectsAnInvalidInstanceWithoutACall(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	r := newRegistry(t, fakeClient(t, srv))
	tests := map[string]discovery.Instance{
		"empty ID":    {Service: "users", Addr: "127.0.0.1:8080"},
		"bad service": {ID: "users-1", Service: "Users", Addr: "127.0.0.1:8080"},
		"no port":     {ID: "users-1", Service: "users", Addr: "127.0.0.1"},
		"port zero":   {ID: "users-1", Service: "users", Addr: "127.0.0.1:0"},
		"no host":     {ID: "users-1", Service: "users", Addr: ":8080"},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			err := r.Register(context.Background(), in)
			if want := "consul: register: instance "; err == nil || !strings.HasPrefix(err.Error(), want) ||
				strings.Count(err.Error(), "consul:") != 1 || strings.Contains(err.Error(), "discovery:") {
				t.Errorf("Register = %v, want an error starting %q with one prefix", err, want)
			}
		})
	}
	if err := r.Deregister(context.Background(), discovery.Instance{}); err == nil {
		t.Error("Deregister(no ID) = nil, want an error")
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the agent got %d calls, want none", n)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	client := fakeClient(t, srv)

	if _, err := consul.New(nil); err == nil {
		t.Error("New(nil) = nil error, want one")
	}
	bad := map[string]consul.Option{
		"nil option":              nil,
		"relative health path":    consul.WithHealthPath("health/ready"),
		"negative check interval": consul.WithCheckInterval(-time.Second),
		"negative check timeout":  consul.WithCheckTimeout(-time.Second),
		"negative deregister":     consul.WithDeregisterCriticalAfter(-time.Second),
		"TTL under a second":      consul.WithTTL(100 * time.Millisecond),
		"negative re-register":    consul.WithReregisterInterval(-time.Second),
		"negative wait":           consul.WithWaitTime(-time.Second),
		"wait over Consul's cap":  consul.WithWaitTime(consul.MaxWaitTime + time.Second),
		"backoff max under min":   consul.WithBackoff(time.Second, time.Millisecond),
		"negative backoff":        consul.WithBackoff(-time.Second, 0),
		"empty tag":               consul.WithTags("canary", ""),
	}
	for name, opt := range bad {
		if _, err := consul.New(client, opt); err == nil || !strings.HasPrefix(err.Error(), "consul: ") {
			t.Errorf("New with %s: error %v, want a consul: error", name, err)
		}
	}

	r, err := consul.New(client,
		consul.WithHealthPath("/ready"), consul.WithCheckInterval(time.Second), consul.WithCheckTimeout(time.Second),
		consul.WithDeregisterCriticalAfter(0), consul.WithoutDeregisterCritical(), consul.WithTTL(time.Second),
		consul.WithReregisterInterval(time.Second), consul.WithCheckInterval(0), consul.WithWaitTime(0),
		consul.WithTags("a", "b"), consul.WithDatacenter("dc2"), consul.WithWaitTime(consul.MaxWaitTime),
		consul.WithLogger(nil), consul.WithBackoff(0, 0))
	if err != nil {
		t.Fatalf("New with every option: %v", err)
	}
	if _, ok := r.Staleness("users"); ok {
		t.Error("Staleness of a service never resolved: ok = true, want false")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("New and Close made %d calls to the agent, want none", n)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	t.Parallel()
	fake := newFakeConsul(t)
	fake.set("users", fakeEntry("users-1", "10.0.0.1", "", 8080))
	r, err := consul.New(fakeClient(t, fake.srv), consul.WithTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := r.Resolve(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	// A registration with its TTL and re-registration loop.
	if err := r.Register(ctx, discoverytest.Instance("users", 2)); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if err := r.Close(); err != nil {
			t.Fatalf("Close = %v, want nil every time", err)
		}
	}
	// goleak, in TestMain, checks that the watch and the loop have ended.
	for _, svc := range []string{"users", "orders"} {
		if got, err := r.Resolve(ctx, svc); err == nil {
			t.Errorf("Resolve(%s) after Close = %v, nil; want an error", svc, got)
		}
	}
	if err := r.Register(ctx, discoverytest.Instance("users", 3)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Register after Close = %v, want an error saying the registry is closed", err)
	}
	if err := r.Deregister(ctx, discoverytest.Instance("users", 2)); err != nil {
		t.Errorf("Deregister after Close = %v, want nil: it still reaches the agent", err)
	}
}

// blackHole returns the address of a listener that accepts connections and
// never answers, and a channel that receives each accepted connection's
// arrival; it closes them all when t ends.
func blackHole(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	arrivals := make(chan struct{}, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			select {
			case arrivals <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String(), arrivals
}

// TestDeregisterCriticalAfterReachesTheCheck: the check Register sends carries
// the default removal delay, the one given, or none with
// WithoutDeregisterCritical.
func TestDeregisterCriticalAfterReachesTheCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts []consul.Option
		want string
	}{
		{"default", nil, consul.DefaultDeregisterCriticalAfter.String()},
		{"zero keeps the default", []consul.Option{consul.WithDeregisterCriticalAfter(0)}, consul.DefaultDeregisterCriticalAfter.String()},
		{"given", []consul.Option{consul.WithDeregisterCriticalAfter(2 * time.Minute)}, (2 * time.Minute).String()},
		{"without", []consul.Option{consul.WithoutDeregisterCritical()}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/agent/service/register" {
					var reg api.AgentServiceRegistration
					if err := json.NewDecoder(r.Body).Decode(&reg); err != nil || reg.Check == nil {
						t.Errorf("registration %+v, %v: want one with a check", reg, err)
						got <- "?"
						return
					}
					got <- reg.Check.DeregisterCriticalServiceAfter
				}
			}))
			t.Cleanup(srv.Close)
			r := newRegistry(t, fakeClient(t, srv), tt.opts...)
			if err := r.Register(context.Background(), discovery.Instance{ID: "users-1", Service: "users", Addr: "127.0.0.1:8080"}); err != nil {
				t.Fatal(err)
			}
			if v := <-got; v != tt.want {
				t.Fatalf("DeregisterCriticalServiceAfter = %q, want %q", v, tt.want)
			}
		})
	}
}
