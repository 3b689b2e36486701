package process_test

import (
	"bytes"
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
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/examples/shop/internal/pgtest"
	"github.com/pier-go/pier/examples/shop/process"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// commands are the five service commands, by service name.
var commands = []string{shop.Users, shop.Products, shop.Payments, shop.Orders, shop.Gateway}

// binaries builds every service command into a temporary directory of t's.
func binaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, c := range commands {
		args = append(args, "github.com/pier-go/pier/examples/cmd/"+c)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// freePort returns a loopback address on a port the kernel just handed out
// and released, for a process to bind.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// runBad runs a command with args and env added, expects it to exit non-zero
// within a minute and returns its stderr.
func runBad(t *testing.T, bin, name string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
		t.Fatalf("%s %v: err %v, want a non-zero exit; stderr:\n%s", name, args, err, stderr.String())
	}
	if stdout.Len() > 0 {
		t.Errorf("%s wrote to stdout: %q", name, stdout.String())
	}
	return stderr.String()
}

// cleanEnv is the test's environment without the variables the commands
// read, so that the machine's settings do not leak into the cases.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PIER_") || strings.HasPrefix(k, "CONSUL_") || strings.HasPrefix(k, "OTEL_") ||
			k == "DATABASE_URL" || k == "LOG_FORMAT" || k == "LOG_LEVEL" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LOG_FORMAT=json")
}

// TestBadConfiguration runs each command with a configuration it must
// refuse and checks that it says what is wrong on exactly one line of
// stderr, and exits non-zero before it serves anything.
func TestBadConfiguration(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	routes := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routes, []byte("routes:\n  - name: users\n    prefx: /api/users\n    service: users\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	closed := freePort(t) // nothing listens there
	all := "PIER_SERVICES=users=127.0.0.1:1;products=127.0.0.1:2;payments=127.0.0.1:3;orders=127.0.0.1:4"
	data := "-data=" + dir
	secret := "PIER_ORDERS_SECRET=s3"

	cases := []struct {
		name    string
		command string
		env     []string
		args    []string
		want    []string // substrings of the one line
	}{
		{"unknown registry flag", shop.Products, []string{all}, []string{data, "-registry", "zookeeper"},
			[]string{"products: ", `-registry "zookeeper": unknown registry`}},
		{"unknown registry env", shop.Orders, []string{all, secret, "PIER_REGISTRY=etcd"}, []string{data},
			[]string{"orders: ", `PIER_REGISTRY "etcd": unknown registry`}},
		{"flag wins over env", shop.Users, []string{secret, "PIER_REGISTRY=static"}, []string{data, "-registry=eureka"},
			[]string{`-registry "eureka": unknown registry`}},
		{"sqlite directory under a file", shop.Users, []string{secret}, []string{"-data", filepath.Join(file, "users")},
			[]string{"users: database sqlite:" + filepath.Join(file, "users") + ": ", "not a directory"}},
		{"unwritable sqlite URL", shop.Payments, []string{all, "DATABASE_URL=sqlite:" + filepath.Join(file, "db")}, nil,
			[]string{"payments: database sqlite:" + filepath.Join(file, "db") + ": ", "not a directory"}},
		{"postgres on a closed port", shop.Products, []string{all},
			[]string{"-database", "postgres://shop:hunter2@" + closed + "/shop?connect_timeout=5"},
			[]string{"products: database: ", "postgres://shop:xxxxx@" + closed, "connection refused"}},
		{"unknown database scheme", shop.Orders, []string{all, secret, "DATABASE_URL=mysql://db/shop"}, nil,
			[]string{"orders: DATABASE_URL: ", `unknown scheme "mysql"`}},
		{"malformed routes file", shop.Gateway, []string{all}, []string{"-routes", routes},
			[]string{"gateway: -routes: ", "routes.yaml: line 3: unknown key \"prefx\""}},
		{"missing routes file", shop.Gateway, []string{all, "PIER_ROUTES=" + filepath.Join(dir, "none.yaml")}, nil,
			[]string{"gateway: -routes: ", "none.yaml", "no such file"}},
		{"missing data and database", shop.Products, []string{all}, nil,
			[]string{"products: no database: set -data (PIER_DATA)"}},
		{"static list without a callee", shop.Orders, []string{secret, "PIER_SERVICES=users=127.0.0.1:1"}, []string{data},
			[]string{`orders: PIER_SERVICES: no address for "products", which orders calls`}},
		{"malformed duration", shop.Users, []string{secret, "PIER_DRAIN=soon"}, []string{data},
			[]string{`users: PIER_DRAIN "soon": not a valid duration`}},
		{"unknown flag", shop.Payments, nil, []string{"-bogus"},
			[]string{"payments: flag provided but not defined: -bogus"}},
		{"missing orders secret", shop.Orders, []string{all}, []string{data},
			[]string{"orders: no -orders-secret (PIER_ORDERS_SECRET)"}},
		{"bad log format", shop.Users, []string{secret, "LOG_FORMAT=xml"}, []string{data, "-addr", freePort(t)},
			[]string{"users: ", "LOG_FORMAT", "xml"}},
		{"unreadable signing key", shop.Users, []string{secret}, []string{data, "-signing-key", routes},
			[]string{"users: -signing-key: ", "no PRIVATE KEY block"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stderr := runBad(t, bin, c.command, c.env, c.args...)
			line := strings.TrimSuffix(stderr, "\n")
			if line == "" || strings.Contains(line, "\n") {
				t.Fatalf("stderr is not one line:\n%s", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("stderr %q does not contain %q", line, w)
				}
			}
			if strings.Contains(line, "hunter2") {
				t.Errorf("stderr shows the database password: %q", line)
			}
		})
	}
}

// proc is a running command.
type proc struct {
	name   string
	addr   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls url until it answers 200, for at most a minute, failing the
// test when p exits first.
func waitFor(t *testing.T, client *http.Client, url string, p *proc) {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case err := <-p.done:
			t.Fatalf("%s exited (%v) before %s answered 200; stderr:\n%s", p.name, err, url, p.stderr.String())
		case <-deadline.C:
			t.Fatalf("%s: no 200 within a minute (last: %s); stderr:\n%s", url, last, p.stderr.String())
		case <-tick.C:
		}
	}
}

// startShop starts the five commands from bin on free loopback ports with
// env, each service with a SQLite data directory of its own, the users
// service seeding its demo users and products its catalogue, and waits until
// every instance is ready and the gateway's /health answers 200. A test that
// fails halfway leaves no process behind.
func startShop(t *testing.T, bin string, addrs map[string]string, env []string) []*proc {
	t.Helper()
	var list []instance
	for _, c := range commands {
		list = append(list, instance{cmd: c, addr: addrs[c], args: []string{"-data", t.TempDir()}})
	}
	list[len(list)-1].args = nil // the gateway has no data
	return start(t, bin, list, env)
}

// instance is a process to start: a command, its address and more flags.
type instance struct {
	cmd, addr string
	args      []string
}

// start starts the instances from bin with env, the first users instance
// seeding the demo users and the first products instance the catalogue,
// and waits until every instance is ready and the gateway's /health (the
// last instance's) answers 200.
func start(t *testing.T, bin string, instances []instance, env []string) []*proc {
	t.Helper()
	extra := map[string][]string{
		shop.Users:    {"-admin-password", "admin-password"},
		shop.Products: {"-seed"},
	}
	var procs []*proc
	t.Cleanup(func() {
		for _, p := range procs {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	})
	for _, in := range instances {
		args := append(append([]string{"-addr", in.addr}, extra[in.cmd]...), in.args...)
		delete(extra, in.cmd) // the first instance seeds
		p := &proc{name: in.cmd, addr: in.addr, stderr: &syncBuffer{}, done: make(chan error, 1)}
		p.cmd = exec.Command(filepath.Join(bin, in.cmd), args...)
		p.cmd.Env = env
		p.cmd.Stderr = p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		procs = append(procs, p)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	for _, p := range procs {
		waitFor(t, client, "http://"+p.addr+"/health/ready", p)
	}
	gw := procs[len(procs)-1]
	waitFor(t, client, "http://"+gw.addr+"/health", gw)
	return procs
}

// shopAddrs returns a free loopback address for every command.
func shopAddrs(t *testing.T) map[string]string {
	addrs := map[string]string{}
	for _, c := range commands {
		addrs[c] = freePort(t)
	}
	return addrs
}

// walk registers, logs in, reads /api/users/me, lists the seeded products
// and places an order of two units through the gateway at base; it returns
// the product ordered and its stock after the order.
func walk(t *testing.T, base string, procs []*proc) (product string, stock int) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	// call sends a JSON request to the gateway, with token when not empty,
	// decodes the answer into out and returns its status.
	call := func(method, path, token string, body, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Idempotency-Key", path+"-once")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s = %d: %v", method, path, resp.StatusCode, err)
		}
		return resp.StatusCode
	}
	carol := map[string]string{"email": "carol@example.com", "password": "carol-password", "name": "Carol"}
	var user, me struct{ ID, Email string }
	if code := call("POST", "/api/users", "", carol, &user); code != http.StatusCreated || user.ID == "" {
		t.Fatalf("POST /api/users = %d %+v", code, user)
	}
	var tok struct {
		Token string `json:"access_token"`
	}
	login := map[string]string{"email": carol["email"], "password": carol["password"]}
	if code := call("POST", "/api/login", "", login, &tok); code != http.StatusOK || tok.Token == "" {
		t.Fatalf("POST /api/login = %d %+v", code, tok)
	}
	if code := call("GET", "/api/users/me", tok.Token, nil, &me); code != http.StatusOK || me != user {
		t.Fatalf("GET /api/users/me = %d %+v, want %+v", code, me, user)
	}
	var page struct {
		Products []struct {
			ID    string `json:"id"`
			Stock int    `json:"stock"`
		} `json:"products"`
	}
	if code := call("GET", "/api/products", "", nil, &page); code != http.StatusOK || len(page.Products) != len(shop.SeedProducts) {
		t.Fatalf("GET /api/products = %d, %d products, want %d", code, len(page.Products), len(shop.SeedProducts))
	}

	// An order runs the saga across four processes: orders gets its own
	// token from users with the shared secret, reserves at products and
	// charges at payments.
	first := page.Products[0]
	var order struct{ Status string }
	code := call("POST", "/api/orders", tok.Token, map[string]any{
		"items":       []map[string]any{{"product_id": first.ID, "quantity": 2}},
		"card_number": "4242424242424242",
	}, &order)
	if code != http.StatusCreated || order.Status != "confirmed" {
		for _, p := range procs {
			if p.name == shop.Orders {
				t.Logf("orders stderr:\n%s", p.stderr.String())
			}
		}
		t.Fatalf("POST /api/orders = %d %+v", code, order)
	}
	var after struct{ Stock int }
	if code := call("GET", "/api/products/"+first.ID, "", nil, &after); code != http.StatusOK || after.Stock != first.Stock-2 {
		t.Fatalf("stock after ordering 2 of %d: %d (status %d)", first.Stock, after.Stock, code)
	}
	return first.ID, after.Stock
}

// stopShop sends SIGTERM to every process and requires each to exit 0 after
// a clean stop.
func stopShop(t *testing.T, procs []*proc) {
	t.Helper()
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
	}
	for _, p := range procs {
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s exited with %v after SIGTERM; stderr:\n%s", p.name, err, p.stderr.String())
			}
			if !strings.Contains(p.stderr.String(), `"msg":"service stopped"`) {
				t.Errorf("%s logged no clean stop; stderr:\n%s", p.name, p.stderr.String())
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s still running a minute after SIGTERM", p.name)
		}
	}
}

// TestProcessesStaticRegistry starts users, products, payments, orders and
// the gateway as five processes on loopback ports, found through a static
// list and keeping their data in SQLite files of their own, waits for the
// gateway's /health, registers, logs in, lists the products and places an
// order through the gateway, then stops every process with SIGTERM and
// checks that each exits 0; -probe answers for a ready instance and fails
// for a stopped one.
func TestProcessesStaticRegistry(t *testing.T) {
	bin := binaries(t)
	addrs := shopAddrs(t)
	var list []string
	for _, c := range commands[:4] {
		list = append(list, c+"="+addrs[c])
	}
	env := append(cleanEnv(), "PIER_ORDERS_SECRET=orders-secret", "PIER_REGISTRY=static", "PIER_SERVICES="+strings.Join(list, ";"), "PIER_DRAIN=100ms")
	procs := startShop(t, bin, addrs, env)

	// The container health check: -probe asks the instance on -addr.
	probe := exec.Command(filepath.Join(bin, shop.Products), "-probe", "-addr", addrs[shop.Products], "-data", t.TempDir())
	probe.Env = env
	if out, err := probe.CombinedOutput(); err != nil {
		t.Fatalf("products -probe on a ready instance: %v: %s", err, out)
	}
	walk(t, "http://"+addrs[shop.Gateway], procs)
	stopShop(t, procs)
	line := runBad(t, bin, shop.Products, env[len(env)-3:], "-probe", "-addr", addrs[shop.Products], "-data", t.TempDir())
	if want := "products: probe http://" + addrs[shop.Products] + "/health/ready: "; !strings.HasPrefix(line, want) || strings.Count(line, "\n") != 1 {
		t.Errorf("-probe on a stopped instance: %q, want one line starting %q", line, want)
	}
}

// consulAgent starts a Consul agent in -dev mode on free loopback ports and
// returns its HTTP address once it has a leader. Without a consul binary on
// PATH the test is skipped, or fails when PIER_REQUIRE_CONSUL=1 (as make test
// sets it).
func consulAgent(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("consul")
	if err != nil {
		if os.Getenv("PIER_REQUIRE_CONSUL") == "1" {
			t.Fatalf("PIER_REQUIRE_CONSUL=1 but no consul agent on PATH (%v): make consul builds one into .cache/bin", err)
		}
		t.Skip("no consul agent on PATH: skipped (make test builds one and requires it)")
	}
	port := func() string { _, p, _ := net.SplitHostPort(freePort(t)); return p }
	httpAddr := "127.0.0.1:" + port()
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	agent := &proc{name: "consul", stderr: &syncBuffer{}, done: make(chan error, 1)}
	agent.cmd = exec.Command(bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", httpPort, "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-serf-lan-port", port(), "-serf-wan-port", port(), "-server-port", port(), "-log-level", "warn")
	agent.cmd.Stdout, agent.cmd.Stderr = agent.stderr, agent.stderr
	if err := agent.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { agent.done <- agent.cmd.Wait() }()
	t.Cleanup(func() {
		_ = agent.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-agent.done:
		case <-time.After(30 * time.Second):
			_ = agent.cmd.Process.Kill()
			<-agent.done
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get("http://" + httpAddr + "/v1/status/leader"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && len(b) > 2 { // a quoted address, not ""
				return httpAddr
			}
		}
		select {
		case err := <-agent.done:
			t.Fatalf("consul agent exited (%v):\n%s", err, agent.stderr.String())
		case <-deadline.C:
			t.Fatalf("consul agent has no leader after a minute:\n%s", agent.stderr.String())
		case <-tick.C:
		}
	}
}

// passing returns the addresses Consul at agent lists as passing for
// service.
func passing(t *testing.T, agent, service string) []string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + agent + "/v1/health/service/" + service + "?passing=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var entries []struct {
		Service struct {
			Address string
			Port    int
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, e := range entries {
		addrs = append(addrs, net.JoinHostPort(e.Service.Address, strconv.Itoa(e.Service.Port)))
	}
	return addrs
}

// TestProcessesConsulRegistry runs the five commands with -registry consul
// against a real Consul agent: each instance registers its address, the
// services find each other through Consul, an order goes through, and after
// SIGTERM every process exits 0 and has left Consul's catalog.
func TestProcessesConsulRegistry(t *testing.T) {
	agent := consulAgent(t)
	bin := binaries(t)
	addrs := shopAddrs(t)
	env := append(cleanEnv(), "PIER_ORDERS_SECRET=orders-secret", "PIER_REGISTRY=consul", "CONSUL_HTTP_ADDR="+agent, "PIER_DRAIN=100ms")
	procs := startShop(t, bin, addrs, env)
	// An instance registers once it is ready, retrying with backoff: wait
	// for each, a minute at most.
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for _, c := range commands {
		for got := passing(t, agent, c); !slices.Equal(got, []string{addrs[c]}); got = passing(t, agent, c) {
			select {
			case <-deadline.C:
				t.Fatalf("Consul lists %s at %v, want [%s]", c, got, addrs[c])
			case <-tick.C:
			}
		}
	}
	walk(t, "http://"+addrs[shop.Gateway], procs)
	stopShop(t, procs)
	for _, c := range commands {
		if got := passing(t, agent, c); len(got) != 0 {
			t.Errorf("after SIGTERM Consul still lists %s at %v", c, got)
		}
	}
}

// TestProcessesPostgres runs two products instances on one PostgreSQL
// database beside one instance of each other service, found through a static
// list: an order placed through the gateway takes stock that both products
// instances then report.
func TestProcessesPostgres(t *testing.T) {
	db := pgtest.NewDatabase(t)
	bin := binaries(t)
	addrs := shopAddrs(t)
	second := freePort(t)
	list := fmt.Sprintf("users=%s;products=%s,%s;payments=%s;orders=%s",
		addrs[shop.Users], addrs[shop.Products], second, addrs[shop.Payments], addrs[shop.Orders])
	env := append(cleanEnv(), "PIER_ORDERS_SECRET=orders-secret", "PIER_REGISTRY=static", "PIER_SERVICES="+list,
		"PIER_DRAIN=100ms", "DATABASE_URL="+db)
	procs := start(t, bin, []instance{
		{cmd: shop.Users, addr: addrs[shop.Users], args: []string{"-data", t.TempDir()}}, // the signing key
		{cmd: shop.Products, addr: addrs[shop.Products]},
		{cmd: shop.Products, addr: second},
		{cmd: shop.Payments, addr: addrs[shop.Payments]},
		{cmd: shop.Orders, addr: addrs[shop.Orders]},
		{cmd: shop.Gateway, addr: addrs[shop.Gateway]},
	}, env)
	id, stock := walk(t, "http://"+addrs[shop.Gateway], procs)
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	for _, addr := range []string{addrs[shop.Products], second} {
		resp, err := client.Get("http://" + addr + "/products/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ Stock int }
		err = json.NewDecoder(resp.Body).Decode(&p)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || p.Stock != stock {
			t.Errorf("products at %s: %d, stock %d (%v), want %d", addr, resp.StatusCode, p.Stock, err, stock)
		}
	}
	client.CloseIdleConnections()
	stopShop(t, procs)
}

// TestParseFlagWinsOverEnvironment checks Parse's precedence and defaults
// without starting anything.
func TestParseFlagWinsOverEnvironment(t *testing.T) {
	env := map[string]string{
		"PIER_ADDR":     ":9000",
		"PIER_DATA":     "/var/lib/shop",
		"PIER_SERVICES": "users=10.0.0.1:8080",
		"PIER_DRAIN":    "2s",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := process.Parse(shop.Products, []string{"-addr", ":9100"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9100" || c.Data != "/var/lib/shop" || c.Database != "sqlite:/var/lib/shop" || c.Drain != 2*time.Second || c.Registry != process.Static {
		t.Fatalf("Parse = %+v", c)
	}
	c, err = process.Parse(shop.Users, []string{"-data", "/d", "-orders-secret", "s"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.SigningKey != filepath.Join("/d", "users-signing-key.pem") {
		t.Fatalf("signing key default %q", c.SigningKey)
	}
	// DNS (Kubernetes) needs no static list: the cluster's DNS has the answers.
	c, err = process.Parse(shop.Gateway, []string{"-registry", "dns", "-dns-domain", "shop.svc.cluster.local", "-services", ""}, lookup)
	if err != nil || c.Registry != process.DNS || c.DNSDomain != "shop.svc.cluster.local" {
		t.Fatalf("Parse(dns) = %+v, %v", c, err)
	}
	if _, err := process.Parse(shop.Gateway, []string{"-data", "/d"}, lookup); err == nil {
		t.Fatal("the gateway accepted -data, which it has no use for")
	}
}
