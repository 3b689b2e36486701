package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/gateway"
	"github.com/pier-go/pier/problem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait in these tests; it is never asserted as a time.
const waitFor = 10 * time.Second

// seen is what an upstream received.
type seen struct {
	Service    string
	Method     string
	Path       string // r.URL.Path
	Escaped    string // r.URL.EscapedPath()
	RequestURI string
	Query      string
	Host       string
	Header     http.Header
	Trailer    http.Header
	Body       string
}

// upstream is a real HTTP server on loopback, registered as an instance of a
// service, that records every request it gets (but readiness probes) and
// answers with a handler a test may change.
type upstream struct {
	service string
	srv     *httptest.Server
	mu      sync.Mutex
	got     []seen
	handler atomic.Pointer[http.HandlerFunc]
	ready   atomic.Int32 // status of /health/ready; 0 means 200
}

func (u *upstream) set(h http.HandlerFunc) { u.handler.Store(&h) }

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.got...)
}

// last returns the last request u received, failing t when there is none.
func (u *upstream) last(t *testing.T) seen {
	t.Helper()
	got := u.requests()
	if len(got) == 0 {
		t.Fatalf("upstream %s received no request", u.service)
	}
	return got[len(got)-1]
}

func newUpstream(t *testing.T, reg *discovery.Memory, service string, n int) *upstream {
	t.Helper()
	u := &upstream{service: service}
	u.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, service+" "+r.URL.EscapedPath())
	})
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health/ready" {
			if s := u.ready.Load(); s != 0 {
				w.WriteHeader(int(s))
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, seen{Service: service, Method: r.Method, Path: r.URL.Path, Escaped: r.URL.EscapedPath(),
			RequestURI: r.RequestURI, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(),
			Trailer: r.Trailer.Clone(), Body: string(body)})
		u.mu.Unlock()
		(*u.handler.Load())(w, r)
	}))
	t.Cleanup(u.srv.Close)
	if err := reg.Register(context.Background(), discovery.Instance{
		ID: fmt.Sprintf("%s-%d", service, n), Service: service, Addr: u.srv.Listener.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	return u
}

// env is a gateway in front of one upstream per service its routes name,
// reached through a discovery client over a memory registry.
type env struct {
	reg    *discovery.Memory
	client *http.Client
	gw     *gateway.Gateway
	front  *httptest.Server
	up     map[string]*upstream
}

func newEnv(t *testing.T, routes []gateway.Route, opts ...gateway.Option) *env {
	t.Helper()
	e := &env{reg: discovery.NewMemory(), up: map[string]*upstream{}}
	for _, r := range routes {
		if e.up[r.Service] == nil {
			e.up[r.Service] = newUpstream(t, e.reg, r.Service, 0)
		}
	}
	e.client = discovery.NewClient(e.reg)
	t.Cleanup(e.client.CloseIdleConnections)
	gw, err := gateway.New(e.client, routes, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gw
	e.front = httptest.NewServer(gw)
	t.Cleanup(e.front.Close)
	return e
}

// raw sends target and headers on a new connection exactly as written and
// returns the response, its body read.
func (e *env) raw(t *testing.T, method, target string, headers ...string) (*http.Response, string) {
	t.Helper()
	return rawRequest(t, e.front.Listener.Addr().String(), method, target, "", headers...)
}

func rawRequest(t *testing.T, addr, method, target, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitFor))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: gw.example\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %q: %v", method, target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data)
}

// get sends GET path through the gateway with the Go client.
func (e *env) get(t *testing.T, path string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.front.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	resp, err := e.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// wantProblem fails t unless resp is a problem document with status.
func wantProblem(t *testing.T, resp *http.Response, body string, status int) map[string]any {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type %q, want %q; body %s", ct, problem.ContentType, body)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if got, _ := p["status"].(float64); int(got) != status {
		t.Fatalf("problem status %v, want %d", p["status"], status)
	}
	return p
}

// open is a route without auth.
func open(name, prefix, service string) gateway.Route {
	return gateway.Route{Name: name, Prefix: prefix, Service: service, Auth: gateway.AuthNone}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newFront serves h on loopback for the test's life.
func newFront(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
