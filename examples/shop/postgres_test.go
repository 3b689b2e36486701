package shop

import (
	"net/http"
	"sync"
	"testing"

	"github.com/pier-go/pier/examples/shop/internal/pgtest"
)

// onDatabase sets the shop's database URL.
func onDatabase(url string) func(*Config) { return func(c *Config) { c.Database = url } }

// TestShopOnPostgres: the shop with every store in one PostgreSQL database
// places an order, replays an idempotent retry and cancels once, and keeps
// it all across a restart.
func TestShopOnPostgres(t *testing.T) {
	db, dir := pgtest.NewDatabase(t), t.TempDir()
	ts := startShop(t, dir, onDatabase(db))
	p := ts.product("Teapot", 3100, 5)
	alice := ts.login(AliceEmail, AlicePassword)

	ord := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 2}), "Idempotency-Key", "alice-pg-1")
	ts.want(ord, http.StatusCreated, "order")
	again := ts.api("POST", "/api/orders", alice, orderBody(cardOK, line{p, 2}), "Idempotency-Key", "alice-pg-1")
	if again.status != http.StatusCreated || again.str("id") != ord.str("id") || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry with the key = %d %s", again.status, again.raw)
	}
	if s := ts.stock(p); s != 3 {
		t.Fatalf("stock = %d, want 3", s)
	}
	declined := ts.api("POST", "/api/orders", alice, orderBody(cardDeclined, line{p, 1}))
	ts.want(declined, http.StatusPaymentRequired, "a declined card")
	ts.shutdown()

	ts = startShop(t, dir, onDatabase(db))
	got := ts.api("GET", "/api/orders/"+ord.str("id"), alice, nil)
	ts.want(got, http.StatusOK, "the order after a restart")
	if got.str("status") != "confirmed" {
		t.Fatalf("order after the restart = %s", got.raw)
	}
	for range 2 {
		c := ts.api("POST", "/api/orders/"+ord.str("id")+"/cancel", alice, nil)
		if c.status != http.StatusOK || c.str("status") != "cancelled" {
			t.Fatalf("cancel = %d %s", c.status, c.raw)
		}
	}
	if s := ts.stock(p); s != 5 {
		t.Fatalf("stock after cancelling = %d, want 5", s)
	}
}

// TestTwoShopsShareOnePostgresNeverOversell: two shops (every service twice,
// as two deployments would run them) on one PostgreSQL database, 50 one-unit
// orders at once split between their gateways, for a stock of 10: exactly 10
// confirmed, stock 0.
func TestTwoShopsShareOnePostgresNeverOversell(t *testing.T) {
	db := pgtest.NewDatabase(t)
	a := startShop(t, t.TempDir(), onDatabase(db))
	b := startShop(t, t.TempDir(), onDatabase(db)) // its own signing key: log in at each
	p := a.product("Limited edition", 5000, 10)
	shops := []*testShop{a, b}
	tokens := []string{a.login(AliceEmail, AlicePassword), b.login(AliceEmail, AlicePassword)}

	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = shops[i%2].api("POST", "/api/orders", tokens[i%2], orderBody(cardOK, line{p, 1})).status
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
	if sa, sb := a.stock(p), b.stock(p); sa != 0 || sb != 0 {
		t.Fatalf("stock = %d and %d, want 0", sa, sb)
	}
}
