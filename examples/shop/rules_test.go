package shop

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/examples/shop/orders"
	"github.com/pier-go/pier/examples/shop/payments"
	"github.com/pier-go/pier/examples/shop/products"
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
	if os := ts.myOrders(alice); len(os) != 1 {
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
	if os := ts.myOrders(alice); len(os) != 0 {
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

// TestSweepUndoesAbandonedOrders: a placement cut short after its stock was
// reserved and its card charged (the process died before confirming) leaves a
// pending order; the sweep refunds the charge, releases the stock and deletes
// the order, and leaves a pending order that is still young alone.
func TestSweepUndoesAbandonedOrders(t *testing.T) {
	ts := startShop(t, t.TempDir())
	p := ts.product("Grinder", 12900, 5)
	alice := ts.login(AliceEmail, AlicePassword)
	aliceID := ts.api("GET", "/api/users/me", alice, nil).str("id")
	ctx := t.Context()
	now := time.Now()

	abandoned := orders.Order{ID: "o_abandoned", UserID: aliceID, Status: orders.Pending, CreatedAt: now.Add(-10 * time.Minute),
		Items: []orders.Item{{ProductID: p, Quantity: 2}}}
	young := orders.Order{ID: "o_young", UserID: aliceID, Status: orders.Pending, CreatedAt: now,
		Items: []orders.Item{{ProductID: p, Quantity: 1}}}
	for _, o := range []orders.Order{abandoned, young} {
		if err := ts.ordersStore.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ts.productsStore.Reserve(ctx, products.Reservation{ID: orders.ReservationID(o.ID, p), ProductID: p, Quantity: o.Items[0].Quantity}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := ts.paymentsStore.Create(ctx, payments.Charge{ID: "ch_abandoned", Reference: abandoned.ID, AmountCents: 25800, CardLast4: "4242", Status: payments.Captured}); err != nil {
		t.Fatal(err)
	}
	if s := ts.stock(p); s != 2 {
		t.Fatalf("stock before the sweep = %d, want 2", s)
	}

	n, err := ts.orders.Sweep(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v; want 1 order undone", n, err)
	}
	if s := ts.stock(p); s != 4 {
		t.Fatalf("stock after the sweep = %d, want 4 (the young order keeps its unit)", s)
	}
	ch, err := ts.paymentsStore.ByID(ctx, "ch_abandoned")
	if err != nil || ch.Status != payments.Refunded {
		t.Fatalf("charge after the sweep = %+v, %v", ch, err)
	}
	ts.want(ts.api("GET", "/api/orders/o_abandoned", alice, nil), http.StatusNotFound, "the abandoned order")
	ts.want(ts.api("GET", "/api/orders/o_young", alice, nil), http.StatusOK, "the young order")
	// A second sweep finds nothing more to do.
	if n, err := ts.orders.Sweep(ctx, now); err != nil || n != 0 {
		t.Fatalf("second sweep = %d, %v", n, err)
	}
}

// TestUndoStepsOwedWhileDownAreSwept: undo steps that fail because payments
// is down (the refund of an undecided charge, the refund of a cancel) are
// owed and done by the sweep once payments is back; meanwhile no order is
// left pending and the stock is back.
func TestUndoStepsOwedWhileDownAreSwept(t *testing.T) {
	ts := startShop(t, t.TempDir())
	p := ts.product("Jug", 1500, 8)
	alice := ts.login(AliceEmail, AlicePassword)
	ctx := t.Context()
	ord := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 2}))
	ts.want(ord, http.StatusCreated, "order")

	// Payments answers 503 to everything now.
	if err := ts.stop(Payments); err != nil {
		t.Fatal(err)
	}
	ts.cfg.Payments = []payments.Option{payments.WithFailureRate(1)}
	if err := ts.start(ctx, Payments); err != nil {
		t.Fatal(err)
	}
	if err := ts.waitRegistered(ctx, Payments); err != nil {
		t.Fatal(err)
	}
	res := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 1}))
	ts.want(res, http.StatusServiceUnavailable, "order while payments fails")
	c := ts.api("POST", "/api/orders/"+ord.str("id")+"/cancel", alice, nil)
	ts.want(c, http.StatusOK, "cancel while payments fails")
	if s := ts.stock(p); s != 8 {
		t.Fatalf("stock = %d, want 8", s)
	}
	for _, o := range ts.myOrders(alice) {
		if o["status"] == "pending" {
			t.Fatalf("an order left pending: %v", o)
		}
	}
	owed, err := ts.ordersStore.Owed(ctx, 10)
	if err != nil || len(owed) != 2 {
		t.Fatalf("owed = %v, %v; want the two refunds", owed, err)
	}

	// Payments is back: the sweep does what is owed, once.
	if err := ts.stop(Payments); err != nil {
		t.Fatal(err)
	}
	ts.cfg.Payments = nil
	if err := ts.start(ctx, Payments); err != nil {
		t.Fatal(err)
	}
	if err := ts.waitRegistered(ctx, Payments); err != nil {
		t.Fatal(err)
	}
	if n, err := ts.orders.Sweep(ctx, time.Now()); err != nil || n != 2 {
		t.Fatalf("sweep = %d, %v; want 2 steps", n, err)
	}
	if owed, err := ts.ordersStore.Owed(ctx, 10); err != nil || len(owed) != 0 {
		t.Fatalf("owed after the sweep = %v, %v", owed, err)
	}
	for _, st := range owed {
		ch, _, err := ts.paymentsStore.Refund(ctx, st.Target) // changes nothing more
		want := payments.Voided
		if st.Target == ord.str("id") {
			want = payments.Refunded
		}
		if err != nil || ch.Status != want {
			t.Fatalf("charge of %s = %+v, %v; want %s", st.Target, ch, err, want)
		}
	}
}
