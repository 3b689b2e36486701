package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/gateway"
	"github.com/pier-go/pier/health"
	"github.com/pier-go/pier/internal/metrictest"
)

func TestNewValidates(t *testing.T) {
	client := discovery.NewClient(discovery.NewMemory())
	ok := []gateway.Route{open("api", "/api", "api")}
	cases := []struct {
		name   string
		client *http.Client
		routes []gateway.Route
		opts   []gateway.Option
		want   string
	}{
		{"nil client", nil, ok, nil, "nil client"},
		{"nil option", client, ok, []gateway.Option{nil}, "option 0 is nil"},
		{"no routes", client, nil, nil, "no routes"},
		{"token route without verifier", client, []gateway.Route{{Prefix: "/api", Service: "api"}}, nil, "WithVerifier"},
		{"negative timeout", client, []gateway.Route{{Prefix: "/api", Service: "api", Auth: gateway.AuthNone, Timeout: -1}}, nil, "Timeout"},
		{"negative body limit", client, []gateway.Route{{Prefix: "/api", Service: "api", Auth: gateway.AuthNone, BodyLimit: -1}}, nil, "BodyLimit"},
		{"trailing slash", client, []gateway.Route{open("a", "/api/", "api")}, nil, "trailing slash"},
		{"prefix not canonical", client, []gateway.Route{open("a", "/api/../x", "api")}, nil, "Prefix"},
		{"bad service", client, []gateway.Route{open("a", "/api", "Not_A_Label")}, nil, "Service"},
		{"strip and rewrite", client, []gateway.Route{{Prefix: "/a", Service: "api", Auth: gateway.AuthNone, StripPrefix: true, Rewrite: "/b"}}, nil, "Rewrite"},
		{"scopes on open route", client, []gateway.Route{{Prefix: "/a", Service: "api", Auth: gateway.AuthNone, Scopes: []string{"x"}}}, nil, "Scopes"},
		// Scopes the auth package would refuse on every request, answering
		// 401 even to a token that holds them.
		{"scope not ASCII", client, []gateway.Route{{Prefix: "/a", Service: "api", Scopes: []string{"café"}}}, nil, "Scopes"},
		{"scope with a control character", client, []gateway.Route{{Prefix: "/a", Service: "api", Scopes: []string{"a\x01b"}}}, nil, "Scopes"},
		{"scope with a quote", client, []gateway.Route{{Prefix: "/a", Service: "api", Scopes: []string{`a"b`}}}, nil, "Scopes"},
		{"lower-case method", client, []gateway.Route{{Prefix: "/a", Service: "api", Auth: gateway.AuthNone, Methods: []string{"get"}}}, nil, "Methods"},
		{"zero rate", client, []gateway.Route{{Prefix: "/a", Service: "api", Auth: gateway.AuthNone, RateLimit: &gateway.RateLimit{}}}, nil, "Rate"},
		{"header key without header", client, []gateway.Route{{Prefix: "/a", Service: "api", Auth: gateway.AuthNone,
			RateLimit: &gateway.RateLimit{Rate: 1, Key: gateway.RateKeyHeader}}}, nil, "Header"},
		{"identity header as key", client, []gateway.Route{{Prefix: "/a", Service: "api", Auth: gateway.AuthNone,
			RateLimit: &gateway.RateLimit{Rate: 1, Key: gateway.RateKeyHeader, Header: "X-Forwarded-For"}}}, nil, "dropped"},
		{"CORS any origin with credentials", client, []gateway.Route{{Prefix: "/a", Service: "api", Auth: gateway.AuthNone,
			CORS: &gateway.CORS{Origins: []string{"*"}, Credentials: true}}}, nil, "Credentials"},
		{"duplicate prefix", client, []gateway.Route{open("a", "/api", "api"), open("b", "/api", "api")}, nil, "conflicting"},
		{"duplicate name", client, []gateway.Route{open("a", "/api", "api"), open("a", "/x", "api")}, nil, "conflicting"},
		{"bad trusted proxy", client, ok, []gateway.Option{gateway.WithTrustedProxies("10.0.0.0/33")}, "WithTrustedProxies"},
		{"bad pre-auth limit", client, ok, []gateway.Option{gateway.WithPreAuthLimit(-1, 1)}, "WithPreAuthLimit"},
		{"bad max keys", client, ok, []gateway.Option{gateway.WithMaxRateKeys(0)}, "WithMaxRateKeys"},
		{"nil clock", client, ok, []gateway.Option{gateway.WithClock(nil)}, "WithClock"},
		{"negative ready ttl", client, ok, []gateway.Option{gateway.WithReadiness("", -time.Second)}, "ttl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := gateway.New(c.client, c.routes, c.opts...)
			if err == nil || g != nil {
				t.Fatalf("New = %v, %v; want an error", g, err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gateway: ") {
				t.Fatalf("error %q, want it to start with gateway: and mention %q", err, c.want)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, []gateway.Route{{Name: "api", Prefix: "/api", Service: "api", Auth: gateway.AuthNone,
		Methods: []string{"GET", "POST"}}})
	resp, body := e.raw(t, "DELETE", "/api/x")
	wantProblem(t, resp, body, http.StatusMethodNotAllowed)
	if a := resp.Header.Get("Allow"); a != "GET, HEAD, POST" {
		t.Fatalf("Allow %q", a)
	}
	if resp, _ := e.raw(t, "HEAD", "/api/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: status %d, want 200 (GET implies HEAD)", resp.StatusCode)
	}
	if n := len(e.up["api"].requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want only the HEAD", n)
	}
}

func TestNoRoute(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	resp, body := e.get(t, "/other")
	wantProblem(t, resp, body, http.StatusNotFound)
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, []gateway.Route{{Name: "api", Prefix: "/api", Service: "api", Auth: gateway.AuthNone, BodyLimit: 16}})
	t.Run("content-length", func(t *testing.T) {
		resp, body := rawRequest(t, e.front.Listener.Addr().String(), "POST", "/api/x", strings.Repeat("x", 17))
		wantProblem(t, resp, body, http.StatusRequestEntityTooLarge)
	})
	t.Run("chunked", func(t *testing.T) {
		resp, err := e.front.Client().Post(e.front.URL+"/api/x", "text/plain",
			io.MultiReader(strings.NewReader(strings.Repeat("x", 10)), strings.NewReader(strings.Repeat("y", 100))))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		wantProblem(t, resp, string(body), http.StatusRequestEntityTooLarge)
	})
	t.Run("chunked, behind a middleware's writer", func(t *testing.T) {
		// As in a Service, whose middleware wraps the ResponseWriter: the
		// connection, with the rest of the body unread on it, is closed
		// after the 413 all the same.
		front := newFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.gw.ServeHTTP(wrappedWriter{w}, r)
		}))
		resp, err := front.Client().Post(front.URL+"/api/x", "text/plain",
			io.MultiReader(strings.NewReader(strings.Repeat("x", 10)), strings.NewReader(strings.Repeat("y", 100))))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		wantProblem(t, resp, string(body), http.StatusRequestEntityTooLarge)
		if !resp.Close {
			t.Fatal("the connection stays open after a body over the limit: the server was not told")
		}
	})
	t.Run("within", func(t *testing.T) {
		resp, body := rawRequest(t, e.front.Listener.Addr().String(), "POST", "/api/x", "0123456789abcdef")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if got := e.up["api"].last(t).Body; got != "0123456789abcdef" {
			t.Fatalf("upstream body %q", got)
		}
	})
}

// TestRouteTimeoutCancelsUpstream: past the route's timeout the client gets
// 504 and the upstream request is cancelled.
// wrappedWriter is a middleware's ResponseWriter wrapper, with Unwrap as
// http.ResponseController expects.
type wrappedWriter struct{ http.ResponseWriter }

func (w wrappedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestRouteTimeoutCancelsUpstream(t *testing.T) {
	e := newEnv(t, []gateway.Route{{Name: "slow", Prefix: "/slow", Service: "slow", Auth: gateway.AuthNone,
		Timeout: 50 * time.Millisecond}})
	cancelled := make(chan struct{}, 4)
	release := make(chan struct{})
	defer close(release)
	e.up["slow"].set(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-release:
		}
	})
	resp, body := e.get(t, "/slow/x")
	wantProblem(t, resp, body, http.StatusGatewayTimeout)
	select {
	case <-cancelled:
	case <-time.After(waitFor):
		t.Fatal("the upstream request was not cancelled")
	}
}

// TestClientDisconnectCancelsUpstream: a client that goes away cancels the
// upstream request.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	arrived := make(chan struct{})
	cancelled := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	e.up["api"].set(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-release:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.front.URL+"/api/x", nil)
	done := make(chan error, 1)
	go func() {
		resp, err := e.front.Client().Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-arrived:
	case <-time.After(waitFor):
		t.Fatal("request did not arrive")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(waitFor):
		t.Fatal("the upstream request was not cancelled")
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, []gateway.Route{{Name: "api", Prefix: "/api", Service: "api", Auth: gateway.AuthNone,
		Methods: []string{"GET", "PUT"},
		CORS: &gateway.CORS{Origins: []string{"https://shop.example"}, Headers: []string{"Authorization", "Content-Type"},
			Expose: []string{"RateLimit"}, Credentials: true, MaxAge: 10 * time.Minute}}})
	e.up["api"].set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // the gateway owns CORS on this route
	})
	preflight := func(origin, method, headers string) (*http.Response, string) {
		return e.raw(t, "OPTIONS", "/api/x", "Origin: "+origin, "Access-Control-Request-Method: "+method,
			"Access-Control-Request-Headers: "+headers)
	}
	t.Run("preflight allowed", func(t *testing.T) {
		resp, _ := preflight("https://shop.example", "PUT", "authorization, content-type")
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for k, v := range map[string]string{
			"Access-Control-Allow-Origin": "https://shop.example", "Access-Control-Allow-Methods": "GET, PUT",
			"Access-Control-Allow-Headers": "Authorization, Content-Type", "Access-Control-Allow-Credentials": "true",
			"Access-Control-Max-Age": "600",
		} {
			if g := resp.Header.Get(k); g != v {
				t.Errorf("%s = %q, want %q", k, g, v)
			}
		}
	})
	for name, c := range map[string][3]string{
		"origin not allowed":  {"https://evil.example", "GET", ""},
		"null origin":         {"null", "GET", ""},
		"origin prefix trick": {"https://shop.example.evil.example", "GET", ""},
		"method not allowed":  {"https://shop.example", "DELETE", ""},
		"header not allowed":  {"https://shop.example", "GET", "x-user-id"},
	} {
		t.Run("preflight "+name, func(t *testing.T) {
			resp, body := preflight(c[0], c[1], c[2])
			wantProblem(t, resp, body, http.StatusForbidden)
			if g := resp.Header.Get("Access-Control-Allow-Origin"); g != "" {
				t.Fatalf("Access-Control-Allow-Origin %q on a refusal", g)
			}
		})
	}
	if n := len(e.up["api"].requests()); n != 0 {
		t.Fatalf("preflights reached the upstream: %d", n)
	}
	t.Run("actual request", func(t *testing.T) {
		resp, _ := e.get(t, "/api/x", "Origin: https://shop.example")
		if g := resp.Header.Get("Access-Control-Allow-Origin"); g != "https://shop.example" {
			t.Fatalf("Access-Control-Allow-Origin %q", g)
		}
		if g := resp.Header.Get("Access-Control-Expose-Headers"); g != "RateLimit" {
			t.Fatalf("Access-Control-Expose-Headers %q", g)
		}
		resp, _ = e.get(t, "/api/x", "Origin: https://evil.example")
		if g := resp.Header.Get("Access-Control-Allow-Origin"); g != "" {
			t.Fatalf("Access-Control-Allow-Origin %q for a foreign origin (the upstream's * must not pass)", g)
		}
	})
}

// TestOneInstanceDownNoFailures: three instances, one of them down; every
// GET through the gateway succeeds (the client retries elsewhere).
func TestOneInstanceDownNoFailures(t *testing.T) {
	reg := discovery.NewMemory()
	var ups []*upstream
	for i := range 3 {
		ups = append(ups, newUpstream(t, reg, "users", i))
	}
	ups[1].srv.Close() // connection refused from now on
	client := discovery.NewClient(reg)
	defer client.CloseIdleConnections()
	gw, err := gateway.New(client, []gateway.Route{open("users", "/users", "users")})
	if err != nil {
		t.Fatal(err)
	}
	front := newFront(t, gw)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				resp, err := front.Client().Get(front.URL + "/users/1")
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of 200 GETs failed", n)
	}
	if len(ups[0].requests()) == 0 || len(ups[2].requests()) == 0 {
		t.Fatal("the live instances did not share the load")
	}
}

// TestUpstreamUnavailable: no instance is 503 with Retry-After; every
// instance refusing connections is 502 or 503; both are problems.
func TestUpstreamUnavailable(t *testing.T) {
	reg := discovery.NewMemory()
	client := discovery.NewClient(reg)
	defer client.CloseIdleConnections()
	gw, err := gateway.New(client, []gateway.Route{open("users", "/users", "users"), open("gone", "/gone", "gone")})
	if err != nil {
		t.Fatal(err)
	}
	front := newFront(t, gw)
	u := newUpstream(t, reg, "gone", 0)
	u.srv.Close()

	resp, body := rawRequest(t, front.Listener.Addr().String(), "GET", "/users/1", "")
	wantProblem(t, resp, body, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	resp, body = rawRequest(t, front.Listener.Addr().String(), "GET", "/gone/1", "")
	if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	p := wantProblem(t, resp, body, resp.StatusCode)
	if d, _ := p["detail"].(string); strings.Contains(d, "127.0.0.1") {
		t.Errorf("the problem names an internal address: %q", d)
	}
}

// TestSetRoutesUnderLoad: swapping the table while requests flow drops none,
// and every request is routed by one table or the other.
func TestSetRoutesUnderLoad(t *testing.T) {
	a := []gateway.Route{open("users", "/users", "users"), open("orders", "/orders", "orders")}
	b := []gateway.Route{{Name: "users", Prefix: "/users", Service: "users", Auth: gateway.AuthNone, Methods: []string{"GET"}},
		open("orders", "/orders", "orders")}
	e := newEnv(t, a)
	stop := make(chan struct{})
	var failed, sent atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := "/users/1"
				if i%2 == 1 {
					path = "/orders/1"
				}
				sent.Add(1)
				resp, err := e.front.Client().Get(e.front.URL + path)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	for i := range 200 {
		tbl := a
		if i%2 == 0 {
			tbl = b
		}
		if err := e.gw.SetRoutes(tbl); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during the swaps", n, sent.Load())
	}
}

// TestSetRoutesInvalidKeepsOld: a table that fails validation leaves the old
// one serving.
func TestSetRoutesInvalidKeepsOld(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	err := e.gw.SetRoutes([]gateway.Route{open("x", "/x", "api"), open("y", "/x", "api")})
	if !errors.Is(err, gateway.ErrConflict) {
		t.Fatalf("SetRoutes = %v, want ErrConflict", err)
	}
	if resp, _ := e.get(t, "/api/1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("old table: status %d", resp.StatusCode)
	}
	if resp, _ := e.get(t, "/x/1"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("half of the new table serves: status %d", resp.StatusCode)
	}
}

func TestReady(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, []gateway.Route{open("users", "/users", "users"), open("orders", "/orders", "orders")},
		gateway.WithClock(clock.Now))
	ctx := context.Background()
	if err := e.gw.Ready(ctx); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	e.up["orders"].ready.Store(http.StatusServiceUnavailable)
	if err := e.gw.Ready(ctx); err != nil {
		t.Fatalf("Ready within the cache's life = %v, want the cached nil", err)
	}
	clock.Add(2 * time.Second)
	err := e.gw.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), `"orders"`) || strings.Contains(err.Error(), `"users"`) {
		t.Fatalf("Ready = %v, want orders not ready", err)
	}
	e.up["orders"].ready.Store(0)
	clock.Add(2 * time.Second)
	if err := e.gw.Ready(ctx); err != nil {
		t.Fatalf("Ready = %v after recovery", err)
	}
}

func TestRoutesHandler(t *testing.T) {
	e := newEnv(t, []gateway.Route{{Name: "users", Prefix: "/api/users", Service: "users", Auth: gateway.AuthNone,
		Rewrite: "/users", Methods: []string{"GET"}, RateLimit: &gateway.RateLimit{Rate: 10}}})
	admin := newFront(t, e.gw.RoutesHandler())
	resp, err := admin.Client().Get(admin.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Routes []map[string]any `json:"routes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Routes) != 1 {
		t.Fatalf("routes %v", got.Routes)
	}
	r := got.Routes[0]
	if r["service"] != "users" || r["auth"] != "none" || r["timeout"] != "30s" || r["rewrite"] != "/users" {
		t.Fatalf("route %v", r)
	}
	rl, _ := r["rate_limit"].(map[string]any)
	if rl["rate"] != 10.0 || rl["burst"] != 10.0 || rl["key"] != "subject" {
		t.Fatalf("rate_limit %v", rl)
	}
	// The listing is a route file: it loads back.
	data, _ := json.Marshal(got)
	if _, err := gateway.LoadRoutes("routes.json", data); err != nil {
		t.Fatalf("the listing does not load back: %v", err)
	}
	resp2, err := admin.Client().Post(admin.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	_ = resp2.Body.Close()
	wantProblem(t, resp2, string(body), http.StatusMethodNotAllowed)
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	clock := newFakeClock()
	e := newEnv(t, []gateway.Route{{Name: "api", Prefix: "/api", Service: "api", Auth: gateway.AuthNone,
		RateLimit: &gateway.RateLimit{Rate: 1, Burst: 2, Key: gateway.RateKeyIP}}},
		gateway.WithMeterProvider(mp), gateway.WithClock(clock.Now))
	for range 3 {
		e.get(t, "/api/x")
	}
	e.get(t, "/nowhere")
	e.raw(t, "GET", "/api/%2e%2e/x")
	want := []struct {
		name  string
		attrs []attribute.KeyValue
		value float64
	}{
		{"pier.gateway.requests", []attribute.KeyValue{attribute.String("pier.gateway.route", "api"), attribute.String("outcome", "proxied")}, 2},
		{"pier.gateway.requests", []attribute.KeyValue{attribute.String("pier.gateway.route", "api"), attribute.String("outcome", "rate_limited")}, 1},
		{"pier.gateway.requests", []attribute.KeyValue{attribute.String("pier.gateway.route", ""), attribute.String("outcome", "not_found")}, 1},
		{"pier.gateway.requests", []attribute.KeyValue{attribute.String("pier.gateway.route", ""), attribute.String("outcome", "bad_request")}, 1},
		{"pier.gateway.rate_limited", []attribute.KeyValue{attribute.String("pier.gateway.route", "api"), attribute.String("limit", "route")}, 1},
	}
	for _, w := range want {
		got, ok := metrictest.Value(t, reader, w.name, w.attrs...)
		if !ok || got != w.value {
			t.Errorf("%s %v = %v (found %v), want %v", w.name, w.attrs, got, ok, w.value)
		}
	}
}

// TestBreakerOpenIs503: once the service's circuit breaker opens on an
// upstream that keeps failing, the gateway answers 503 problems itself,
// without calling the upstream.
func TestBreakerOpenIs503(t *testing.T) {
	reg := discovery.NewMemory()
	u := newUpstream(t, reg, "flaky", 0)
	u.set(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	client := discovery.NewClient(reg, discovery.WithRetries(0))
	defer client.CloseIdleConnections()
	gw, err := gateway.New(client, []gateway.Route{open("flaky", "/flaky", "flaky")})
	if err != nil {
		t.Fatal(err)
	}
	front := newFront(t, gw)
	opened := false
	for i := 0; i < 200 && !opened; i++ {
		resp, body := rawRequest(t, front.Listener.Addr().String(), "GET", "/flaky/x", "")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			wantProblem(t, resp, body, http.StatusServiceUnavailable)
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			opened = true
		}
	}
	if !opened {
		t.Fatal("the breaker never opened")
	}
	before := len(u.requests())
	resp, body := rawRequest(t, front.Listener.Addr().String(), "GET", "/flaky/x", "")
	wantProblem(t, resp, body, http.StatusServiceUnavailable)
	if n := len(u.requests()); n != before {
		t.Fatalf("the upstream was called through an open breaker")
	}
}

// TestReadyIsAHealthChecker: Ready fits health.Checker.
func TestReadyIsAHealthChecker(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("users", "/users", "users")})
	var c health.Checker = health.CheckerFunc(e.gw.Ready)
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}
