package consul_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/sdk/testutil"
	"go.uber.org/goleak"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/consul"
	"github.com/pier-go/pier/discovery/discoverytest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(withSharedAgent{m},
		// testutil takes the agents' ports from sdk/freeport, which starts this
		// goroutine on first use (freeport.initialize) to recycle returned ports,
		// and has no exported way to stop it. It is the sdk's, not the Registry's.
		goleak.IgnoreTopFunction("github.com/hashicorp/consul/sdk/freeport.checkFreedPorts"),
	)
}

// withSharedAgent runs the tests, then stops the agent they shared, before
// goleak looks for goroutines left behind.
type withSharedAgent struct{ m *testing.M }

func (w withSharedAgent) Run() int {
	code := w.m.Run()
	for i := len(shared.cleanups) - 1; i >= 0; i-- {
		shared.cleanups[i]()
	}
	return code
}

// waitFor bounds every wait on a condition: long, because CI machines are
// shared and slow; a passing test never waits that long.
const waitFor = discoverytest.WaitFor

// requireConsul skips tb when the consul binary is not on PATH, or fails it
// when PIER_REQUIRE_CONSUL=1 (as make test sets it).
func requireConsul(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("consul"); err != nil {
		if os.Getenv("PIER_REQUIRE_CONSUL") == "1" {
			tb.Fatalf("PIER_REQUIRE_CONSUL=1 but no consul agent on PATH (%v): make consul builds one into .cache/bin", err)
		}
		tb.Skip("no consul agent on PATH: skipped (make test builds one and requires it; or put .cache/bin on PATH)")
	}
}

// shared is the agent that the tests of this binary share, each with service
// names of its own; TestMain stops it.
var shared struct {
	once     sync.Once
	agent    *agent
	err      error
	cleanups []func() // run by TestMain after the tests, in reverse
}

// sharedAgent returns the agent of this test binary, starting it on first use.
func sharedAgent(t *testing.T) *agent {
	t.Helper()
	requireConsul(t)
	shared.once.Do(func() {
		tb := &agentTB{T: t, out: new(syncBuffer), name: "shared-agent",
			cleanup: func(f func()) { shared.cleanups = append(shared.cleanups, f) }}
		shared.agent, shared.err = launch(tb, nil)
	})
	if shared.err != nil {
		t.Fatalf("shared consul agent: %v", shared.err)
	}
	shared.agent.dumpOnFailure(t)
	return shared.agent
}

// startAgent starts an agent of t's own, stopped when t ends, on ports when
// they are not nil and on free ports otherwise.
func startAgent(t *testing.T, ports *testutil.TestPortConfig) *agent {
	t.Helper()
	requireConsul(t)
	a, err := launch(&agentTB{T: t, out: new(syncBuffer), name: t.Name(), cleanup: t.Cleanup}, ports)
	if err != nil {
		t.Fatalf("consul agent: %v", err)
	}
	a.dumpOnFailure(t)
	return a
}

// agent is a running Consul agent (a single-node server, as with -dev).
type agent struct {
	srv  *testutil.TestServer
	out  *syncBuffer // the agent's stdout and stderr, and testutil's logs
	stop func()      // stops the agent; idempotent
}

// agentTB is the testing.TB that testutil gets: its logs go to the agent's
// buffer and its cleanups where the agent's life ends.
type agentTB struct {
	*testing.T
	out     *syncBuffer
	name    string
	cleanup func(func())
}

func (a *agentTB) Cleanup(f func())           { a.cleanup(f) }
func (a *agentTB) Name() string               { return a.name }
func (a *agentTB) Log(args ...any)            { fmt.Fprintln(a.out, args...) }
func (a *agentTB) Logf(f string, args ...any) { fmt.Fprintf(a.out, f+"\n", args...) }

// launch starts an agent and waits until it has a leader and its node is in
// the catalog, so that registrations reach the catalog at once.
func launch(tb *agentTB, ports *testutil.TestPortConfig) (*agent, error) {
	srv, err := testutil.NewTestServerConfigT(tb, func(c *testutil.TestServerConfig) {
		c.Stdout, c.Stderr = tb.out, tb.out
		c.LogLevel = "info"
		c.Connect = nil // no CA to bootstrap: registration needs none of it
		c.Peering = nil
		if ports != nil {
			c.Ports = ports
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%w\nagent output:\n%s", err, tb.out.String())
	}
	a := &agent{srv: srv, out: tb.out}
	a.stop = sync.OnceFunc(func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintf(tb.out, "agent stop: %v\n", err)
		}
	})
	tb.Cleanup(a.stop)

	client, closeClient := a.newClient()
	defer closeClient()
	err = poll(waitFor, func() error {
		if leader, err := client.Status().Leader(); err != nil || leader == "" {
			return fmt.Errorf("no leader yet (%v)", err)
		}
		node, _, err := client.Catalog().Node(srv.Config.NodeName, nil)
		if err != nil || node == nil || node.Node == nil {
			return fmt.Errorf("node %s not in the catalog yet (%v)", srv.Config.NodeName, err)
		}
		return nil
	})
	if err != nil {
		a.stop()
		return nil, fmt.Errorf("agent not ready: %w\nagent output:\n%s", err, tb.out.String())
	}
	return a, nil
}

// client returns a client of the agent whose idle connections close when tb
// ends (after the registries made on it, which were made later).
func (a *agent) client(tb testing.TB) *api.Client {
	c, closeClient := a.newClient()
	tb.Cleanup(closeClient)
	return c
}

func (a *agent) newClient() (*api.Client, func()) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // every watched service holds a connection
	c, err := api.NewClient(&api.Config{Address: a.srv.HTTPAddr, Transport: tr})
	if err != nil {
		panic(err) // only a bad address fails, and HTTPAddr is host:port
	}
	return c, tr.CloseIdleConnections
}

// dumpOnFailure logs the end of the agent's output if t fails.
func (a *agent) dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("consul agent output (last 32 KiB):\n%s", a.out.tail(32<<10))
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) tail(n int) string {
	s := b.String()
	return s[max(0, len(s)-n):]
}

// poll calls cond until it returns nil, or returns its last error after
// timeout.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		<-t.C
	}
}

// waitUntil waits for cond to return nil, failing tb after waitFor, and
// returns how long that took.
func waitUntil(tb testing.TB, what string, cond func() error) time.Duration {
	tb.Helper()
	start := time.Now()
	if err := poll(waitFor, cond); err != nil {
		tb.Fatalf("%s: not within %v: %v", what, waitFor, err)
	}
	return time.Since(start)
}

// newRegistry returns a Registry on client, closed when tb ends.
func newRegistry(tb testing.TB, client *api.Client, opts ...consul.Option) *consul.Registry {
	tb.Helper()
	r, err := consul.New(client, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// register registers ins with r, failing tb on an error.
func register(tb testing.TB, r discovery.Registrar, ins ...discovery.Instance) {
	tb.Helper()
	for _, in := range ins {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		err := r.Register(ctx, in)
		cancel()
		if err != nil {
			tb.Fatalf("Register(%s): %v", in.ID, err)
		}
	}
}

// deregisterAtEnd deregisters in from r when tb ends, so that the shared
// agent does not keep checking a server that is gone.
func deregisterAtEnd(tb testing.TB, r discovery.Registrar, in discovery.Instance) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := r.Deregister(ctx, in); err != nil && !errors.Is(err, context.Canceled) {
			tb.Logf("Deregister(%s) at the end: %v", in.ID, err)
		}
	})
}
