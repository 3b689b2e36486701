package shop

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestShopWalkthrough walks the HTTP contract through the gateway only.
func TestShopWalkthrough(t *testing.T) {
	ts := startShop(t, t.TempDir())

	// Register, with the rules on email, password and duplicates.
	reg := ts.api("POST", "/api/users", "", map[string]string{"email": "Carol@Example.com", "password": "carol-password", "name": "Carol"})
	ts.want(reg, http.StatusCreated, "register")
	if reg.str("id") == "" || reg.str("email") != "carol@example.com" || reg.str("name") != "Carol" || reg.body["password"] != nil {
		t.Fatalf("register answered %s", reg.raw)
	}
	ts.want(ts.api("POST", "/api/users", "", map[string]string{"email": "carol@example.com", "password": "another-password", "name": "C"}), http.StatusConflict, "register a taken email")
	ts.want(ts.api("POST", "/api/users", "", map[string]string{"email": "not-an-email", "password": "long-enough", "name": "X"}), http.StatusBadRequest, "register a bad email")
	ts.want(ts.api("POST", "/api/users", "", map[string]string{"email": "dave@example.com", "password": "short", "name": "Dave"}), http.StatusBadRequest, "register a short password")

	// Log in.
	ts.want(ts.api("POST", "/api/login", "", map[string]string{"email": "carol@example.com", "password": "wrong-password"}), http.StatusUnauthorized, "wrong password")
	ts.want(ts.api("POST", "/api/login", "", map[string]string{"email": "nobody@example.com", "password": "wrong-password"}), http.StatusUnauthorized, "unknown email")
	login := ts.api("POST", "/api/login", "", map[string]string{"email": "carol@example.com", "password": "carol-password"})
	ts.want(login, http.StatusOK, "login")
	if login.str("token_type") != "Bearer" || login.num("expires_in") != 3600 || login.str("access_token") == "" {
		t.Fatalf("login answered %s", login.raw)
	}
	carol := login.str("access_token")
	me := ts.api("GET", "/api/users/me", carol, nil)
	ts.want(me, http.StatusOK, "me")
	if me.str("id") != reg.str("id") || me.str("email") != "carol@example.com" {
		t.Fatalf("me = %s, want %s", me.raw, reg.raw)
	}
	unauth := ts.api("GET", "/api/users/me", "", nil)
	ts.want(unauth, http.StatusUnauthorized, "me without a token")
	if unauth.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}

	// List, paged by cursor, and get.
	seen := map[string]bool{}
	cursor := ""
	for range len(SeedProducts) + 1 {
		a := ts.api("GET", "/api/products?limit=2&cursor="+url.QueryEscape(cursor), "", nil)
		ts.want(a, http.StatusOK, "list products")
		for _, p := range a.body["products"].([]any) {
			id := p.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("product %s on two pages", id)
			}
			seen[id] = true
		}
		if cursor = a.str("next_cursor"); cursor == "" {
			break
		}
	}
	if len(seen) != len(SeedProducts) {
		t.Fatalf("paging saw %d products, want %d", len(seen), len(SeedProducts))
	}
	ts.want(ts.api("GET", "/api/products?limit=0", "", nil), http.StatusBadRequest, "limit 0")
	ts.want(ts.api("GET", "/api/products?limit=101", "", nil), http.StatusBadRequest, "limit 101")
	ts.want(ts.api("GET", "/api/products?cursor=forged", "", nil), http.StatusBadRequest, "a forged cursor")
	ts.want(ts.api("GET", "/api/products/p_unknown", "", nil), http.StatusNotFound, "unknown product")

	// Creating a product takes the admin scope.
	newProduct := map[string]any{"name": "Milk jug", "price_cents": 1500, "stock": 4}
	ts.want(ts.api("POST", "/api/products", "", newProduct), http.StatusUnauthorized, "create without a token")
	ts.want(ts.api("POST", "/api/products", carol, newProduct), http.StatusForbidden, "create without the admin scope")
	jug := ts.product("Milk jug", 1500, 4)
	got := ts.api("GET", "/api/products/"+jug, "", nil)
	ts.want(got, http.StatusOK, "get product")
	if got.str("name") != "Milk jug" || got.num("price_cents") != 1500 || got.num("stock") != 4 {
		t.Fatalf("product = %s", got.raw)
	}

	// Restocking takes the admin scope too.
	ts.want(ts.api("POST", "/api/products/"+jug+"/restock", carol, map[string]any{"quantity": 2}), http.StatusForbidden, "restock without the admin scope")
	admin := ts.login(AdminEmail, "admin-password")
	ts.want(ts.api("POST", "/api/products/p_unknown/restock", admin, map[string]any{"quantity": 2}), http.StatusNotFound, "restock an unknown product")
	ts.want(ts.api("POST", "/api/products/"+jug+"/restock", admin, map[string]any{"quantity": 0}), http.StatusBadRequest, "restock 0")
	restocked := ts.api("POST", "/api/products/"+jug+"/restock", admin, map[string]any{"quantity": 2})
	ts.want(restocked, http.StatusOK, "restock")
	if restocked.num("stock") != 6 {
		t.Fatalf("restocked = %s", restocked.raw)
	}

	// Order: the stock drops, the price is the product's.
	ts.want(ts.api("POST", "/api/orders", "", orderBody(cardOK, line{jug, 1})), http.StatusUnauthorized, "order without a token")
	ord := ts.api("POST", "/api/orders", carol, orderBody(cardOK, line{jug, 3}))
	ts.want(ord, http.StatusCreated, "order")
	if ord.str("status") != "confirmed" || ord.num("total_cents") != 4500 {
		t.Fatalf("order = %s", ord.raw)
	}
	item := ord.body["items"].([]any)[0].(map[string]any)
	if item["product_id"] != jug || item["quantity"] != float64(3) || item["price_cents"] != float64(1500) {
		t.Fatalf("order item = %v", item)
	}
	if s := ts.stock(jug); s != 3 {
		t.Fatalf("stock after the order = %d, want 3", s)
	}
	id := ord.str("id")

	// My orders, and nobody else's.
	mine := ts.myOrders(carol)
	if len(mine) != 1 || mine[0]["id"] != id || mine[0]["status"] != "confirmed" {
		t.Fatalf("my orders = %v", mine)
	}
	ts.want(ts.api("GET", "/api/orders/"+id, carol, nil), http.StatusOK, "get my order")
	bob := ts.login(BobEmail, BobPassword)
	ts.want(ts.api("GET", "/api/orders/"+id, bob, nil), http.StatusNotFound, "Bob gets Carol's order")
	ts.want(ts.api("POST", "/api/orders/"+id+"/cancel", bob, nil), http.StatusNotFound, "Bob cancels Carol's order")
	if len(ts.myOrders(bob)) != 0 {
		t.Fatal("Bob lists Carol's order")
	}

	// Cancel, twice: the stock comes back once, the charge is refunded once.
	for i := range 2 {
		c := ts.api("POST", "/api/orders/"+id+"/cancel", carol, nil)
		ts.want(c, http.StatusOK, "cancel "+strconv.Itoa(i+1))
		if c.str("status") != "cancelled" {
			t.Fatalf("cancel %d = %s", i+1, c.raw)
		}
	}
	if s := ts.stock(jug); s != 6 {
		t.Fatalf("stock after the cancel = %d, want 6", s)
	}
	ch, _, err := ts.paymentsStore.Refund(t.Context(), id) // a third refund changes nothing
	if err != nil || ch.Status != "refunded" || ch.AmountCents != 4500 {
		t.Fatalf("charge after cancelling = %+v, %v", ch, err)
	}

	// The gateway's health: every routed service has a ready instance.
	ts.want(ts.api("GET", "/health", "", nil), http.StatusOK, "gateway health")
}

// TestConcurrentOrdersNeverOversell: 50 one-unit orders at once for a product
// with 10 in stock confirm exactly 10.
func TestConcurrentOrdersNeverOversell(t *testing.T) {
	ts := startShop(t, t.TempDir())
	p := ts.product("Limited edition", 5000, 10)
	alice := ts.login(AliceEmail, AlicePassword)

	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 1})).status
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != 10 || count[http.StatusConflict] != n-10 {
		t.Fatalf("statuses = %v, want 10 x 201 and %d x 409", count, n-10)
	}
	if s := ts.stock(p); s != 0 {
		t.Fatalf("stock = %d, want 0", s)
	}
	confirmed := 0
	for _, o := range ts.myOrders(alice) {
		if o["status"] == "confirmed" {
			confirmed++
		}
	}
	if confirmed != 10 {
		t.Fatalf("%d confirmed orders listed, want 10", confirmed)
	}
}

// TestShortStockReleasesWhatWasReserved: [A x2, B x(stock+1)] is refused with
// 409, leaves no order and gives A's reservation back.
func TestShortStockReleasesWhatWasReserved(t *testing.T) {
	ts := startShop(t, t.TempDir())
	a := ts.product("A", 100, 5)
	b := ts.product("B", 200, 3)
	alice := ts.login(AliceEmail, AlicePassword)

	res := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{a, 2}, line{b, 4}))
	ts.want(res, http.StatusConflict, "order more than the stock")
	if res.str("product_id") != b || res.num("available") != 3 || res.str("detail") == "" {
		t.Fatalf("409 = %s", res.raw)
	}
	if s := ts.stock(a); s != 5 {
		t.Fatalf("A's stock = %d, want 5", s)
	}
	if s := ts.stock(b); s != 3 {
		t.Fatalf("B's stock = %d, want 3", s)
	}
	if os := ts.myOrders(alice); len(os) != 0 {
		t.Fatalf("orders after a 409: %v", os)
	}
	// Bad items are 400 and 404, and leave nothing behind either.
	ts.want(ts.api("POST", "/api/orders", alice, orderBody(cardOK)), http.StatusBadRequest, "no items")
	ts.want(ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{a, 0})), http.StatusBadRequest, "quantity 0")
	ts.want(ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{a, 1}, line{a, 1})), http.StatusBadRequest, "a product twice")
	ts.want(ts.api("POST", "/api/orders", alice, orderBody("1234", line{a, 1})), http.StatusBadRequest, "a bad card number")
	ts.want(ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{a, 1}, line{"p_unknown", 1})), http.StatusNotFound, "an unknown product")
	dear := ts.product("Dear", 100_000_000, 20)
	ts.want(ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{dear, 11})), http.StatusBadRequest, "a total over the limit")
	if s := ts.stock(dear); s != 20 {
		t.Fatalf("stock after a total over the limit = %d, want 20", s)
	}
	if s := ts.stock(a); s != 5 {
		t.Fatalf("A's stock after bad orders = %d, want 5", s)
	}
	if os := ts.myOrders(alice); len(os) != 0 {
		t.Fatalf("orders after bad orders: %v", os)
	}
}

// TestDeclinedCardRejectsOrder: 402, the order kept as rejected with its
// reason, the stock given back.
func TestDeclinedCardRejectsOrder(t *testing.T) {
	ts := startShop(t, t.TempDir())
	p := ts.product("Kettle", 4900, 7)
	alice := ts.login(AliceEmail, AlicePassword)

	res := ts.api("POST", "/api/orders", alice, orderBody(cardDeclined, line{p, 2}))
	ts.want(res, http.StatusPaymentRequired, "order with a declined card")
	if res.str("decline_code") != "card_declined" || res.str("order_id") == "" {
		t.Fatalf("402 = %s", res.raw)
	}
	if s := ts.stock(p); s != 7 {
		t.Fatalf("stock = %d, want 7", s)
	}
	o := ts.api("GET", "/api/orders/"+res.str("order_id"), alice, nil)
	ts.want(o, http.StatusOK, "get the rejected order")
	if o.str("status") != "rejected" || o.str("reason") != "card_declined" {
		t.Fatalf("rejected order = %s", o.raw)
	}
	// Cancelling a rejected order has nothing to undo.
	ts.want(ts.api("POST", "/api/orders/"+o.str("id")+"/cancel", alice, nil), http.StatusConflict, "cancel a rejected order")
}

// TestPaymentsDownAnswers503: with payments stopped, an order is answered 503
// with Retry-After and leaves nothing reserved and no order; once payments is
// back, orders succeed again.
func TestPaymentsDownAnswers503(t *testing.T) {
	ts := startShop(t, t.TempDir())
	p := ts.product("Grinder", 12900, 3)
	alice := ts.login(AliceEmail, AlicePassword)

	if err := ts.stop(Payments); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		res := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 1}), "Idempotency-Key", "while-down")
		ts.want(res, http.StatusServiceUnavailable, fmt.Sprintf("order %d while payments is down", i+1))
		if res.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	}
	if s := ts.stock(p); s != 3 {
		t.Fatalf("stock while payments is down = %d, want 3", s)
	}
	if os := ts.myOrders(alice); len(os) != 0 {
		t.Fatalf("orders left while payments is down: %v", os)
	}

	if err := ts.start(t.Context(), Payments); err != nil {
		t.Fatal(err)
	}
	if err := ts.waitRegistered(t.Context(), Payments); err != nil {
		t.Fatal(err)
	}
	// The same key again: a 503 was not kept, so the order is placed as soon
	// as the orders service's breaker for payments lets a trial through.
	deadline := time.Now().Add(time.Minute)
	for attempt := 1; ; attempt++ {
		res := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 1}), "Idempotency-Key", "while-down")
		if res.status == http.StatusCreated {
			break
		}
		ts.want(res, http.StatusServiceUnavailable, "order while the breaker is open")
		if s := ts.stock(p); s != 3 {
			t.Fatalf("stock while the breaker is open = %d, want 3", s)
		}
		if attempt == 30 || time.Now().After(deadline) {
			t.Fatalf("no order placed after %d attempts since payments is back", attempt)
		}
	}
	if s := ts.stock(p); s != 2 {
		t.Fatalf("stock after the order = %d, want 2", s)
	}
}
