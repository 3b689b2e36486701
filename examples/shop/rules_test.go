package shop

import (
	"net/http"
	"sync"
	"testing"

	"github.com/pier-go/pier/examples/shop/payments"
)

// TestIdempotencyKeyPlacesOneOrder: one Idempotency-Key sent 10 times at once
// places one order and takes the stock once; every answer is that order.
// The same key with another body is 422; another user's same key is theirs.
func TestIdempotencyKeyPlacesOneOrder(t *testing.T) {
	ts := startShop(t, t.TempDir())
	p := ts.product("Beans", 2400, 20)
	alice := ts.login(AliceEmail, AlicePassword)
	body := orderBody(cardOK, line{p, 2})

	const n = 10
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = ts.api("POST", "/api/orders", alice, body, "Idempotency-Key", "alice-1") })
	}
	wg.Wait()
	id := answers[0].str("id")
	for i, a := range answers {
		if a.status != http.StatusCreated || a.str("id") != id || a.str("status") != "confirmed" {
			t.Fatalf("answer %d: %d %s, want 201 with order %s", i, a.status, a.raw, id)
		}
	}
	if s := ts.stock(p); s != 18 {
		t.Fatalf("stock = %d, want 18", s)
	}
	if os := ts.orders(alice); len(os) != 1 {
		t.Fatalf("%d orders, want 1: %v", len(os), os)
	}

	other := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 3}), "Idempotency-Key", "alice-1")
	ts.want(other, http.StatusUnprocessableEntity, "the same key with another body")

	// Bob's key of the same name is Bob's own.
	bob := ts.login(BobEmail, BobPassword)
	b := ts.api("POST", "/api/orders", bob, body, "Idempotency-Key", "alice-1")
	ts.want(b, http.StatusCreated, "Bob's order with Alice's key name")
	if b.str("id") == id {
		t.Fatal("Bob got Alice's order back")
	}
	if s := ts.stock(p); s != 16 {
		t.Fatalf("stock = %d, want 16", s)
	}
}

// TestCancelIsDoneOnce: cancels asked at once all answer the cancelled order;
// the stock comes back once and the charge is refunded once.
func TestCancelIsDoneOnce(t *testing.T) {
	ts := startShop(t, t.TempDir())
	p := ts.product("Cups", 1200, 6)
	alice := ts.login(AliceEmail, AlicePassword)
	ord := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 4}))
	ts.want(ord, http.StatusCreated, "order")
	id := ord.str("id")

	const n = 8
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = ts.api("POST", "/api/orders/"+id+"/cancel", alice, nil) })
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusOK || a.str("status") != "cancelled" {
			t.Fatalf("cancel %d: %d %s", i, a.status, a.raw)
		}
	}
	if s := ts.stock(p); s != 6 {
		t.Fatalf("stock = %d, want 6", s)
	}
	ch, changed, err := ts.paymentsStore.Refund(t.Context(), id)
	if err != nil || changed || ch.Status != payments.Refunded {
		t.Fatalf("charge = %+v, changed %v, %v; want refunded before", ch, changed, err)
	}
	got := ts.api("GET", "/api/orders/"+id, alice, nil)
	if got.str("status") != "cancelled" {
		t.Fatalf("order after cancelling = %s", got.raw)
	}
}

// TestPaymentsFailingAnswers503: a processor that answers 503 to everything
// (after the client's retries) leaves the order undecided: 503 with
// Retry-After, the stock untouched, no order kept.
func TestPaymentsFailingAnswers503(t *testing.T) {
	ts := startShop(t, t.TempDir(), func(c *Config) {
		c.Payments = []payments.Option{payments.WithFailureRate(1)}
	})
	p := ts.product("Filters", 600, 9)
	alice := ts.login(AliceEmail, AlicePassword)
	res := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 3}))
	ts.want(res, http.StatusServiceUnavailable, "order while payments fails")
	if res.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if s := ts.stock(p); s != 9 {
		t.Fatalf("stock = %d, want 9", s)
	}
	if os := ts.orders(alice); len(os) != 0 {
		t.Fatalf("orders kept: %v", os)
	}
}

// TestRestartKeepsEverything: users, products, orders, idempotency keys and
// the signing key survive a restart on the same data directory.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ts := startShop(t, dir)
	p := ts.product("Kettle", 4900, 5)
	reg := ts.api("POST", "/api/users", "", map[string]string{"email": "erin@example.com", "password": "erin-password", "name": "Erin"})
	ts.want(reg, http.StatusCreated, "register")
	token := ts.login("erin@example.com", "erin-password")
	ord := ts.api("POST", "/api/orders", token, orderBody(cardOK, line{p, 2}), "Idempotency-Key", "erin-1")
	ts.want(ord, http.StatusCreated, "order")
	products := len(ts.api("GET", "/api/products?limit=100", "", nil).body["products"].([]any))
	ts.shutdown()

	ts = startShop(t, dir)
	// The token from before still verifies: the key was kept.
	me := ts.api("GET", "/api/users/me", token, nil)
	ts.want(me, http.StatusOK, "me with a token from before the restart")
	if me.str("id") != reg.str("id") {
		t.Fatalf("me = %s", me.raw)
	}
	ts.login("erin@example.com", "erin-password")
	if s := ts.stock(p); s != 3 {
		t.Fatalf("stock after the restart = %d, want 3", s)
	}
	got := ts.api("GET", "/api/orders/"+ord.str("id"), token, nil)
	ts.want(got, http.StatusOK, "the order after the restart")
	if got.str("status") != "confirmed" || got.num("total_cents") != 9800 {
		t.Fatalf("order after the restart = %s", got.raw)
	}
	// The key was kept too: the retry replays, nothing is placed again.
	again := ts.api("POST", "/api/orders", token, orderBody(cardOK, line{p, 2}), "Idempotency-Key", "erin-1")
	ts.want(again, http.StatusCreated, "the same key after the restart")
	if again.str("id") != ord.str("id") || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after the restart = %s", again.raw)
	}
	if s := ts.stock(p); s != 3 {
		t.Fatalf("stock after the retry = %d, want 3", s)
	}
	// The seed ran once.
	if n := len(ts.api("GET", "/api/products?limit=100", "", nil).body["products"].([]any)); n != products {
		t.Fatalf("%d products after the restart, want %d", n, products)
	}
}
