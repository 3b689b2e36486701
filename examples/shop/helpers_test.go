package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/examples/shop/users"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPasswordParams keep argon2id's shape with less memory, so that the many
// logins of the tests stay quick under the race detector.
var testPasswordParams = users.PasswordParams{Memory: 1024, Time: 1, Threads: 1}

// testShop is a running shop on free loopback ports.
type testShop struct {
	*Shop
	t        *testing.T
	base     string // the gateway's URL
	http     *http.Client
	dir      string
	shutdown func()
}

// startShop opens the shop on dir, seeds it and runs it until the test ends
// (or shutdown is called).
func startShop(t *testing.T, dir string, cfg ...func(*Config)) *testShop {
	t.Helper()
	c := Config{
		Addr:           "127.0.0.1:0",
		DataDir:        dir,
		Logger:         slog.New(slog.DiscardHandler),
		PasswordParams: testPasswordParams,
		// Retries as in production, with shorter pauses.
		ClientOptions: []discovery.ClientOption{discovery.WithRetryBackoff(time.Millisecond, 20*time.Millisecond)},
	}
	for _, f := range cfg {
		f(&c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Open(ctx, c)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := s.Seed(ctx, "admin-password"); err != nil {
		cancel()
		t.Fatal(errors.Join(err, s.Close()))
	}
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(a net.Addr) { ready <- a }) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("shop stopped before it was ready: %v", errors.Join(err, s.Close()))
	}
	ts := &testShop{Shop: s, t: t, base: "http://" + addr.String(), dir: dir,
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	var once sync.Once
	ts.shutdown = func() {
		once.Do(func() {
			ts.http.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("shop run: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("shop close: %v", err)
			}
		})
	}
	t.Cleanup(ts.shutdown)
	return ts
}

// serviceURL is the base URL of a service's own port, bypassing the gateway.
func (ts *testShop) serviceURL(name string) string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return "http://" + ts.running[name].svc.Addr().String()
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }

func (a answer) num(k string) int64 { f, _ := a.body[k].(float64); return int64(f) }

// do sends a JSON request to url with the bearer token (when not empty) and
// extra header pairs.
func (ts *testShop) do(method, url, token string, body any, header ...string) answer {
	ts.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, url, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			ts.t.Fatalf("%s %s: %v in %q", method, url, err, raw)
		}
	}
	if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		ts.t.Errorf("%s %s: %d answered with Content-Type %q, want problem+json", method, url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return a
}

// api sends a request through the gateway.
func (ts *testShop) api(method, path, token string, body any, header ...string) answer {
	ts.t.Helper()
	return ts.do(method, ts.base+path, token, body, header...)
}

func (ts *testShop) want(a answer, status int, what string) {
	ts.t.Helper()
	if a.status != status {
		ts.t.Fatalf("%s: status %d, want %d; body %s", what, a.status, status, a.raw)
	}
}

// login logs in through the gateway and returns the access token.
func (ts *testShop) login(email, password string) string {
	ts.t.Helper()
	a := ts.api("POST", "/api/login", "", map[string]string{"email": email, "password": password})
	ts.want(a, http.StatusOK, "login "+email)
	return a.str("access_token")
}

// product creates a product as the admin and returns its id.
func (ts *testShop) product(name string, price, stock int64) string {
	ts.t.Helper()
	admin := ts.login(AdminEmail, "admin-password")
	a := ts.api("POST", "/api/products", admin, map[string]any{"name": name, "price_cents": price, "stock": stock})
	ts.want(a, http.StatusCreated, "create product")
	return a.str("id")
}

func (ts *testShop) stock(id string) int64 {
	ts.t.Helper()
	a := ts.api("GET", "/api/products/"+id, "", nil)
	ts.want(a, http.StatusOK, "get product")
	return a.num("stock")
}

type line struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
}

func orderBody(card string, items ...line) map[string]any {
	return map[string]any{"items": items, "card_number": card}
}

// myOrders lists the caller's orders.
func (ts *testShop) myOrders(token string) []map[string]any {
	ts.t.Helper()
	a := ts.api("GET", "/api/orders", token, nil)
	ts.want(a, http.StatusOK, "list orders")
	list, _ := a.body["orders"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, o := range list {
		out = append(out, o.(map[string]any))
	}
	return out
}

const (
	cardOK       = "4242424242424242"
	cardDeclined = "4000000000000002"
)
