package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/examples/shop/internal/pgtest"
	"github.com/pier-go/pier/examples/shop/loadgen"
)

// bound is how long any one condition of the rolling-restart test may take
// to come true: long, because the machine is shared and slow; a passing run
// never waits that long.
const bound = 90 * time.Second

// TestRollingRestartUnderLoad is the shop in production shape, under load,
// while its instances come and go. It builds the service commands, starts a
// Consul agent (dev mode, free loopback ports) and, on one fresh PostgreSQL
// database, two instances of products and of orders and one each of users,
// payments and the gateway, all registered in Consul. While the load
// generator drives the shop through the gateway at a steady rate, it
// restarts every products and orders instance in turn with SIGTERM (each
// replacement registered and ready before the next), then SIGKILLs a
// products instance and starts a replacement.
//
// It asserts that no request failed (a transport error or a 5xx at the
// client) from the start of the load to the end of the rolling restart, that
// no idempotent request (GET, or a POST with an Idempotency-Key) failed
// around the SIGKILL, that the load generator saw no failure beyond the
// non-idempotent requests counted around the SIGKILL, and that the books
// balance at the end.
func TestRollingRestartUnderLoad(t *testing.T) {
	begin := time.Now()
	database := pgtest.NewDatabase(t)
	consulAddr := consulAgent(t)
	bin := binaries(t)
	cat := &catalog{addr: consulAddr, client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(cat.client.CloseIdleConnections)

	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	// The shop's routes with a log-in limit fit for one load generator
	// logging in many customers from one address.
	if err := os.WriteFile(routes, []byte(strings.Replace(routesYAML, "{rate: 1, burst: 10", "{rate: 500, burst: 500", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(cleanEnv(),
		"PIER_REGISTRY=consul",
		"CONSUL_HTTP_ADDR="+consulAddr,
		"DATABASE_URL="+database,
		"PIER_ORDERS_SECRET=rolling-restart-orders-secret",
	)
	const adminPassword = "rolling-admin-password"
	extra := map[string][]string{
		shop.Users:   {"-data", filepath.Join(dir, "users"), "-admin-password", adminPassword},
		shop.Gateway: {"-routes", routes},
	}
	start := func(name string) *child {
		return startChild(t, name, filepath.Join(bin, name), env, append([]string{"-addr", freePort(t)}, extra[name]...)...)
	}

	// users first: the others read its JWKS; two of products and orders.
	running := map[string][]*child{}
	for _, name := range []string{shop.Users, shop.Products, shop.Products, shop.Payments, shop.Orders, shop.Orders, shop.Gateway} {
		running[name] = append(running[name], start(name))
	}
	for _, name := range []string{shop.Users, shop.Products, shop.Payments, shop.Orders, shop.Gateway} {
		for _, c := range running[name] {
			cat.waitReady(t, c)
		}
	}
	gw := running[shop.Gateway][0]
	waitUntil(t, "the gateway's /health answers 200", gw, func() error { return get(cat.client, "http://"+gw.addr+"/health") })

	rec := &recorder{base: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
	client := &http.Client{Transport: rec}
	t.Cleanup(client.CloseIdleConnections)
	stop := make(chan struct{})
	type result struct {
		rep *loadgen.Report
		err error
	}
	loadDone := make(chan result, 1)
	progress := &syncBuffer{}
	go func() {
		rep, err := loadgen.Run(context.Background(), loadgen.Config{
			Target:        "http://" + gw.addr,
			Payments:      "http://" + running[shop.Payments][0].addr,
			AdminEmail:    shop.AdminEmail,
			AdminPassword: adminPassword,
			// An upper bound: the test closes Stop once it is done.
			Duration:    10 * time.Minute,
			Stop:        stop,
			Rate:        40,
			Concurrency: 12,
			Seed:        12,
			Products:    4,
			Stock:       400,
			Users:       10,
			Settle:      30 * time.Second,
			Client:      client,
			Progress:    progress,
		})
		loadDone <- result{rep, err}
	}()
	var stopOnce sync.Once
	stopLoad := func() { stopOnce.Do(func() { close(stop) }) }
	// A test that fails halfway stops the load and waits for the generator
	// before its processes are killed (cleanups run last first).
	t.Cleanup(func() {
		stopLoad()
		select {
		case r := <-loadDone:
			loadDone <- r
		case <-time.After(2 * bound):
			t.Errorf("the load generator did not return %v after its stop", 2*bound)
		}
	})
	loadFailed := func() error {
		select {
		case r := <-loadDone:
			loadDone <- r
			return fmt.Errorf("the load ended early: %v\nprogress:\n%s", r.err, progress.String())
		default:
			return nil
		}
	}
	// The load is steady once some orders went through.
	waitUntil(t, "orders placed under load", nil, func() error {
		if err := loadFailed(); err != nil {
			t.Fatal(err)
		}
		if n := rec.ordersPlaced.Load(); n < 10 {
			return fmt.Errorf("%d orders placed", n)
		}
		return nil
	})

	// The rolling restart: every products and orders instance in turn.
	rec.setPhase(phaseRolling)
	restarts := 0
	for _, name := range []string{shop.Products, shop.Orders} {
		for i := range running[name] {
			old := running[name][i]
			before := rec.requests.Load()
			if err := syscall.Kill(old.cmd.Process.Pid, syscall.SIGTERM); err != nil {
				t.Fatalf("SIGTERM %s: %v", old, err)
			}
			repl := start(name)
			running[name][i] = repl
			cat.waitReady(t, repl)
			old.waitExit(t)
			if err := old.exitErr(); err != nil {
				t.Errorf("%s exited with %v after SIGTERM; output:\n%s", old, err, old.out.tail(4<<10))
			}
			cat.waitGone(t, name, old.addr)
			restarts++
			if rec.requests.Load() == before {
				t.Fatalf("no request was sent while %s restarted: the load is not running", old)
			}
			if err := loadFailed(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The crash: SIGKILL one products instance, start a replacement.
	rec.setPhase(phaseKill)
	killed := running[shop.Products][0]
	killed.kill()
	repl := start(shop.Products)
	running[shop.Products][0] = repl
	cat.waitReady(t, repl)
	// Consul's check finds the dead instance critical; until then callers
	// skip it after its refused connections.
	cat.waitGone(t, shop.Products, killed.addr)
	mark := rec.requests.Load()
	waitUntil(t, "requests after the crash settled", nil, func() error {
		if err := loadFailed(); err != nil {
			t.Fatal(err)
		}
		if n := rec.requests.Load() - mark; n < 100 {
			return fmt.Errorf("%d requests since", n)
		}
		return nil
	})
	stopLoad()

	var r result
	select {
	case r = <-loadDone:
		loadDone <- r // for the cleanup, which waits for it too
	case <-time.After(bound + 30*time.Second):
		t.Fatalf("the load generator did not finish its check; progress:\n%s", progress.String())
	}
	if r.err != nil {
		t.Fatalf("load generator: %v\nprogress:\n%s", r.err, progress.String())
	}
	rep := r.rep
	s := rec.summary()
	t.Logf("load report:\n%s", rep)
	t.Logf("rolling restart under load: %d requests (%d before the restarts, %d during the %d restarts, %d from the SIGKILL on); "+
		"failed: %d before and during the restarts, %d idempotent and %d non-idempotent around the SIGKILL; loadgen's unexpected failures %d; "+
		"wall time %.1fs", s.requests[phaseWarmup]+s.requests[phaseRolling]+s.requests[phaseKill],
		s.requests[phaseWarmup], s.requests[phaseRolling], restarts, s.requests[phaseKill],
		s.failed[phaseWarmup]+s.failed[phaseRolling], s.failedIdem[phaseKill], s.failed[phaseKill]-s.failedIdem[phaseKill],
		rep.UnexpectedFailures(), time.Since(begin).Seconds())
	for _, e := range s.examples {
		t.Logf("failed: %s", e)
	}
	if n := s.failed[phaseWarmup] + s.failed[phaseRolling]; n != 0 {
		t.Errorf("%d requests failed before or during the rolling restart, want 0", n)
	}
	if n := s.failedIdem[phaseKill]; n != 0 {
		t.Errorf("%d idempotent requests failed around the SIGKILL, want 0", n)
	}
	if n, allowed := rep.UnexpectedFailures(), int64(s.failed[phaseKill]-s.failedIdem[phaseKill]); n > allowed {
		t.Errorf("the load generator counted %d unexpected failures, more than the %d non-idempotent requests that failed around the SIGKILL: %v",
			n, allowed, rep.FailureExamples)
	}
	for _, v := range rep.Violations {
		t.Errorf("books: %s", v)
	}
	if !rep.PaymentsChecked {
		t.Error("the payments were not reconciled")
	}
	if rep.Orders["confirmed"]+rep.Orders["cancelled"] == 0 {
		t.Errorf("no order confirmed: %v", rep.Orders)
	}
	if t.Failed() {
		for _, list := range running {
			for _, c := range list {
				t.Logf("%s output (end):\n%s", c, c.out.tail(8<<10))
			}
		}
	}
}

// routesYAML is the gateway's route file, as examples/deploy ships it.
const routesYAML = `routes:
  - {name: users, prefix: /api/users, service: users, rewrite: /users, auth: none}
  - {name: me, prefix: /api/users/me, service: users, rewrite: /users/me, methods: [GET]}
  - name: login
    prefix: /api/login
    service: users
    rewrite: /login
    methods: [POST]
    auth: none
    rate_limit: {rate: 1, burst: 10, key: ip}
  - {name: products, prefix: /api/products, service: products, rewrite: /products, auth: none}
  - {name: orders, prefix: /api/orders, service: orders, rewrite: /orders}
`

// catalog asks the Consul agent which instances pass their checks.
type catalog struct {
	addr   string
	client *http.Client
}

// passing returns the addresses of name's instances whose checks pass.
func (c *catalog) passing(name string) ([]string, error) {
	var entries []struct {
		Service struct {
			Address string
			Port    int
		}
	}
	if err := getJSON(c.client, "http://"+c.addr+"/v1/health/service/"+name+"?passing=1", &entries); err != nil {
		return nil, err
	}
	var addrs []string
	for _, e := range entries {
		addrs = append(addrs, net.JoinHostPort(e.Service.Address, strconv.Itoa(e.Service.Port)))
	}
	return addrs, nil
}

// waitReady waits until ch answers 200 on /health/ready and Consul lists it
// as passing.
func (c *catalog) waitReady(t *testing.T, ch *child) {
	t.Helper()
	waitUntil(t, ch.String()+" ready and registered", ch, func() error {
		if err := get(c.client, "http://"+ch.addr+"/health/ready"); err != nil {
			return err
		}
		addrs, err := c.passing(ch.name)
		if err != nil {
			return err
		}
		if !slices.Contains(addrs, ch.addr) {
			return fmt.Errorf("not passing in Consul (passing: %v)", addrs)
		}
		return nil
	})
}

// waitGone waits until Consul no longer lists addr among name's passing
// instances.
func (c *catalog) waitGone(t *testing.T, name, addr string) {
	t.Helper()
	waitUntil(t, name+" "+addr+" gone from Consul's passing instances", nil, func() error {
		addrs, err := c.passing(name)
		if err != nil {
			return err
		}
		if slices.Contains(addrs, addr) {
			return fmt.Errorf("still passing: %v", addrs)
		}
		return nil
	})
}

// waitUntil polls cond until it returns nil, for at most bound, failing t
// with the last error; and fails t at once when ch (if not nil) exits.
func waitUntil(t *testing.T, what string, ch *child, cond func() error) {
	t.Helper()
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var exited <-chan struct{}
	if ch != nil {
		exited = ch.done
	}
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited (%v) while waiting for %s; output:\n%s", ch, ch.exitErr(), what, ch.out.tail(8<<10))
		case <-deadline.C:
			t.Fatalf("waited %v for %s; last: %v", bound, what, err)
		case <-tick.C:
		}
	}
}

func get(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func getJSON(client *http.Client, url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// child is a process of the test in a process group of its own, killed
// with its group when the test ends.
type child struct {
	name, addr string
	cmd        *exec.Cmd
	out        *syncBuffer
	done       chan struct{} // closed once the process has exited and err is set
	err        error
}

// startChild starts path with args and env in a new process group. When
// args hold -addr, that is the child's address.
func startChild(t *testing.T, name, path string, env []string, args ...string) *child {
	t.Helper()
	c := &child{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	if i := slices.Index(args, "-addr"); i >= 0 && i+1 < len(args) {
		c.addr = args[i+1]
	}
	c.cmd = exec.Command(path, args...)
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.cmd.WaitDelay = 10 * time.Second // output pipes held by a stray grandchild
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	return c
}

func (c *child) String() string {
	if c.addr == "" {
		return c.name
	}
	return c.name + "@" + c.addr
}

// kill SIGKILLs the child's process group and waits for the child.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
}

// waitExit waits, at most bound, for the child to exit.
func (c *child) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(bound):
		t.Fatalf("%s still running %v after SIGTERM; output:\n%s", c, bound, c.out.tail(8<<10))
	}
}

// exitErr is how the child exited; call it once done is closed.
func (c *child) exitErr() error {
	select {
	case <-c.done:
		return c.err
	default:
		return errors.New("still running")
	}
}

// tail returns the last n bytes written.
func (s *syncBuffer) tail(n int) string {
	str := s.String()
	if len(str) > n {
		return "..." + str[len(str)-n:]
	}
	return str
}

// The phases of the rolling-restart test.
const (
	phaseWarmup = iota
	phaseRolling
	phaseKill
	phases
)

// recorder is the load generator's transport: it counts every request and
// every failure (a transport error or a 5xx), by the phase in which the
// request ended, so that a request in flight when an instance is killed
// counts in the crash's phase.
type recorder struct {
	base         http.RoundTripper
	phase        atomic.Int32
	requests     atomic.Int64
	ordersPlaced atomic.Int64

	mu         sync.Mutex
	count      [phases]int
	failed     [phases]int
	failedIdem [phases]int
	examples   []string
}

func (r *recorder) setPhase(p int) { r.phase.Store(int32(p)) }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	r.requests.Add(1)
	p := int(r.phase.Load())
	failed := err != nil || resp.StatusCode >= 500
	if !failed && req.Method == http.MethodPost && req.URL.Path == "/api/orders" && resp.StatusCode == http.StatusCreated {
		r.ordersPlaced.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count[p]++
	if !failed {
		return resp, err
	}
	r.failed[p]++
	idem := req.Header.Get("Idempotency-Key") != ""
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		idem = true
	}
	if idem {
		r.failedIdem[p]++
	}
	if len(r.examples) < 20 {
		what := fmt.Sprint(err)
		if err == nil {
			what = resp.Status + " " + resp.Header.Get("Retry-After")
		}
		r.examples = append(r.examples, fmt.Sprintf("phase %d, %s %s (idempotent %v): %s", p, req.Method, req.URL.Path, idem, what))
	}
	return resp, err
}

type recordSummary struct {
	requests, failed, failedIdem [phases]int
	examples                     []string
}

func (r *recorder) summary() recordSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recordSummary{requests: r.count, failed: r.failed, failedIdem: r.failedIdem, examples: slices.Clone(r.examples)}
}
