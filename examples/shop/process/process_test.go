package process_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/examples/shop"
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

// TestProcessesStaticRegistry starts users, products, payments, orders and
// the gateway as five processes on loopback ports, found through a static
// list and keeping their data in SQLite files of their own, waits for the
// gateway's /health, registers, logs in, lists the products and places an
// order through the gateway, then stops every process with SIGTERM and
// checks that each exits 0.
func TestProcessesStaticRegistry(t *testing.T) {
	bin := binaries(t)
	addrs := map[string]string{}
	var list []string
	for _, c := range commands {
		addrs[c] = freePort(t)
		if c != shop.Gateway {
			list = append(list, c+"="+addrs[c])
		}
	}
	env := append(cleanEnv(), "PIER_ORDERS_SECRET=orders-secret", "PIER_REGISTRY=static", "PIER_SERVICES="+strings.Join(list, ";"), "PIER_DRAIN=100ms")
	extra := map[string][]string{
		shop.Users:    {"-admin-password", "admin-password"},
		shop.Products: {"-seed"},
	}
	var procs []*proc
	t.Cleanup(func() { // a test that failed halfway leaves no process behind
		for _, p := range procs {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	})
	for _, c := range commands {
		args := append([]string{"-addr", addrs[c]}, extra[c]...)
		if c != shop.Gateway {
			args = append(args, "-data", t.TempDir())
		}
		p := &proc{name: c, addr: addrs[c], stderr: &syncBuffer{}, done: make(chan error, 1)}
		p.cmd = exec.Command(filepath.Join(bin, c), args...)
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
	base := "http://" + gw.addr
	waitFor(t, client, base+"/health", gw)

	// The container health check: -probe asks the instance on -addr.
	probe := exec.Command(filepath.Join(bin, shop.Products), "-probe", "-addr", addrs[shop.Products], "-data", t.TempDir())
	probe.Env = env
	if out, err := probe.CombinedOutput(); err != nil {
		t.Fatalf("products -probe on a ready instance: %v: %s", err, out)
	}

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
		t.Fatalf("POST /api/orders = %d %+v; orders stderr:\n%s", code, order, procs[3].stderr.String())
	}
	var after struct{ Stock int }
	if code := call("GET", "/api/products/"+first.ID, "", nil, &after); code != http.StatusOK || after.Stock != first.Stock-2 {
		t.Fatalf("stock after ordering 2 of %d: %d (status %d)", first.Stock, after.Stock, code)
	}
	client.CloseIdleConnections()

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
	line := runBad(t, bin, shop.Products, env[len(env)-3:], "-probe", "-addr", addrs[shop.Products], "-data", t.TempDir())
	if want := "products: probe http://" + addrs[shop.Products] + "/health/ready: "; !strings.HasPrefix(line, want) || strings.Count(line, "\n") != 1 {
		t.Errorf("-probe on a stopped instance: %q, want one line starting %q", line, want)
	}
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
	if _, err := process.Parse(shop.Gateway, []string{"-data", "/d"}, lookup); err == nil {
		t.Fatal("the gateway accepted -data, which it has no use for")
	}
}
