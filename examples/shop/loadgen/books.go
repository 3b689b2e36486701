package loadgen

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// ledger keeps what the answers said, for the check. Safe for concurrent use.
type ledger struct {
	mu sync.Mutex
	// keys: Idempotency-Key -> the order ids its answers named ("" for an
	// answer that named none).
	keys map[string][]string
	// named: customer -> order ids some answer named.
	named map[string]map[string]bool
	// unanswered: customer -> placements whose answer said nothing decisive
	// (no answer, a 5xx, or a 409 for a key still in progress): each may
	// have left an order that no answer named.
	unanswered map[string]int
	// open: cancels not known to be finished, order id -> customer.
	open map[string]*user
}

func newLedger() *ledger {
	return &ledger{keys: map[string][]string{}, named: map[string]map[string]bool{},
		unanswered: map[string]int{}, open: map[string]*user{}}
}

func (l *ledger) placement(email, key string, a answer, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// A 409 without a product is the key still in progress elsewhere.
	decided := a.err == nil && a.status < 500 && (a.status != http.StatusConflict || a.problem["product_id"] != nil)
	if !decided {
		l.unanswered[email]++
		return
	}
	if key != "" {
		l.keys[key] = append(l.keys[key], id)
	}
	if id != "" {
		if l.named[email] == nil {
			l.named[email] = map[string]bool{}
		}
		l.named[email][id] = true
	}
}

func (l *ledger) unfinished(u *user, id string) {
	l.mu.Lock()
	l.open[id] = u
	l.mu.Unlock()
}

func (l *ledger) cancelled(id string) {
	l.mu.Lock()
	delete(l.open, id)
	l.mu.Unlock()
}

// order is an order as GET /api/orders answers it.
type order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Items  []struct {
		ProductID string `json:"product_id"`
		Quantity  int64  `json:"quantity"`
	} `json:"items"`
	TotalCents int64 `json:"total_cents"`
}

// charge is a charge as the payments service lists it.
type charge struct {
	ID          string `json:"id"`
	Reference   string `json:"reference"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"`
}

type productBook struct {
	ID      string
	Price   int64 // cents; a product's price never changes
	Initial int64
	Stock   int64
}

// books is what the check reads back, with what the ledger recorded.
type books struct {
	products   []productBook
	orders     map[string][]order // customer -> their orders
	keys       map[string][]string
	named      map[string]map[string]bool
	unanswered map[string]int
	charges    []charge // nil: not read (no payments URL)
	unread     []string // what could not be read: each is a violation
}

// listLimit is what GET /api/orders returns at most: a customer with that
// many orders may have more.
const listLimit = 100

// Check returns every violation of the books, one line each, sorted.
func (b *books) Check() []string {
	var v []string
	v = append(v, b.unread...)
	byID := map[string]order{}
	confirmedUnits := map[string]int64{}
	price := map[string]int64{}
	for _, p := range b.products {
		price[p.ID] = p.Price
	}
	for email, os := range b.orders {
		if len(os) >= listLimit {
			v = append(v, fmt.Sprintf("customer %s: %d orders listed, the list's limit: some may be missing from the check", email, len(os)))
		}
		unnamed := 0
		for _, o := range os {
			byID[o.ID] = o
			switch o.Status {
			case "pending":
				v = append(v, fmt.Sprintf("order %s of %s: still pending after the settle wait", o.ID, email))
			case "confirmed":
				for _, it := range o.Items {
					confirmedUnits[it.ProductID] += it.Quantity
				}
			}
			if !b.named[email][o.ID] {
				unnamed++
			}
			if o.Status == "confirmed" || o.Status == "cancelled" {
				var want int64
				for _, it := range o.Items {
					want += price[it.ProductID] * it.Quantity
				}
				if o.TotalCents != want {
					v = append(v, fmt.Sprintf("order %s of %s: total %d cents, but its items at the products' prices make %d", o.ID, email, o.TotalCents, want))
				}
			}
		}
		if unnamed > b.unanswered[email] {
			v = append(v, fmt.Sprintf("customer %s: %d orders that no answer named, but only %d placements went unanswered: an order was placed twice",
				email, unnamed, b.unanswered[email]))
		}
	}
	for _, p := range b.products {
		if p.Stock < 0 {
			v = append(v, fmt.Sprintf("product %s: stock %d is below zero", p.ID, p.Stock))
		}
		if c := confirmedUnits[p.ID]; p.Initial != p.Stock+c {
			v = append(v, fmt.Sprintf("product %s: initial stock %d != stock %d + %d units in confirmed orders (%+d units unaccounted for)",
				p.ID, p.Initial, p.Stock, c, p.Initial-p.Stock-c))
		}
	}
	for key, ids := range b.keys {
		distinct := slices.Compact(slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == "" }))))
		if len(distinct) > 1 {
			v = append(v, fmt.Sprintf("Idempotency-Key %s: answered with %d orders: %s", key, len(distinct), strings.Join(distinct, ", ")))
		}
	}
	if b.charges != nil {
		v = append(v, b.checkCharges(byID)...)
	}
	sort.Strings(v)
	return v
}

// checkCharges reconciles the processor's charges with the orders: a
// captured charge for each confirmed order, of its total, and for nothing
// else; a cancelled order's charge refunded.
func (b *books) checkCharges(orders map[string]order) []string {
	var v []string
	byRef := map[string]charge{}
	for _, c := range b.charges {
		if old, ok := byRef[c.Reference]; ok {
			v = append(v, fmt.Sprintf("order %s: two payments, %s and %s", c.Reference, old.ID, c.ID))
		}
		byRef[c.Reference] = c
		o, ok := orders[c.Reference]
		switch {
		case c.Status == "captured" && !ok:
			v = append(v, fmt.Sprintf("payment %s: captured %d cents for %s, which is no order of the run", c.ID, c.AmountCents, c.Reference))
		case c.Status == "captured" && o.Status != "confirmed":
			v = append(v, fmt.Sprintf("payment %s: captured %d cents for order %s, which is %s", c.ID, c.AmountCents, o.ID, o.Status))
		case c.Status == "captured" && c.AmountCents != o.TotalCents:
			v = append(v, fmt.Sprintf("payment %s: captured %d cents for order %s of %d cents", c.ID, c.AmountCents, o.ID, o.TotalCents))
		case c.Status == "refunded" && ok && o.Status == "confirmed":
			v = append(v, fmt.Sprintf("payment %s: refunded, but its order %s is confirmed", c.ID, o.ID))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(orders)) {
		o, c := orders[id], byRef[id]
		switch {
		case o.Status == "confirmed" && c.ID == "":
			v = append(v, fmt.Sprintf("order %s: confirmed without a payment", o.ID))
		case o.Status == "cancelled" && c.Status != "refunded":
			v = append(v, fmt.Sprintf("order %s: cancelled, but its payment is %q, not refunded", o.ID, c.Status))
		}
	}
	return v
}

func (b *books) countStatuses() map[string]int64 {
	m := map[string]int64{}
	for _, os := range b.orders {
		for _, o := range os {
			m[o.Status]++
		}
	}
	return m
}

// settle finishes the cancels left open, then reads the books back until
// they balance or cfg.Settle has passed: the shop may owe a release or a
// refund to its sweeper for a while, and a pending order may still be
// decided. It returns the last reading.
func (g *gen) settle(ctx context.Context) (*books, error) {
	deadline := time.Now().Add(g.cfg.Settle)
	g.progressf("loadgen: load done; settling (at most %s) and reading the books\n", g.cfg.Settle)
	g.finishCancels(ctx, deadline)
	for reads := 1; ; reads++ {
		b, err := g.readBooks(ctx)
		if err != nil {
			return nil, err
		}
		v := b.Check()
		if len(v) == 0 || !time.Now().Before(deadline) {
			return b, nil
		}
		if reads == 1 {
			g.progressf("loadgen: %d violations on the first reading; reading again until the books balance or the settle wait is over\n", len(v))
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return nil, fmt.Errorf("loadgen: interrupted: %w", ctx.Err())
		}
	}
}

// readBooks reads back the orders of the run's customers, its products and
// the payments made since it started.
func (g *gen) readBooks(ctx context.Context) (*books, error) {
	b := &books{orders: map[string][]order{}}
	g.mu.Lock()
	users := slices.Clone(g.users)
	for _, p := range g.products {
		b.products = append(b.products, productBook{ID: p.ID, Price: p.Price, Initial: p.Initial})
	}
	g.mu.Unlock()
	for _, u := range users {
		var out struct {
			Orders []order `json:"orders"`
		}
		if a := g.read(ctx, "read orders", g.api("/api/orders"), u.bearer(), &out); a.err != nil || a.status != http.StatusOK {
			b.unread = append(b.unread, fmt.Sprintf("customer %s: orders could not be read: %s", u.Email, a.describe()))
			continue
		}
		b.orders[u.Email] = out.Orders
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: interrupted: %w", err)
	}
	for i := range b.products {
		p := &b.products[i]
		var out struct {
			Stock int64 `json:"stock"`
		}
		if a := g.read(ctx, "read product", g.api("/api/products/"+url.PathEscape(p.ID)), "", &out); a.err != nil || a.status != http.StatusOK {
			b.unread = append(b.unread, fmt.Sprintf("product %s could not be read: %s", p.ID, a.describe()))
			p.Stock = p.Initial // nothing to compare; the line above is the violation
			continue
		}
		p.Stock = out.Stock
	}
	if g.cfg.Payments != "" {
		b.charges = []charge{}
		q := url.Values{"since": {g.start.Add(-time.Millisecond).UTC().Format(time.RFC3339Nano)}, "limit": {"500"}}
		for range 10_000 {
			var page struct {
				Charges    []charge `json:"charges"`
				NextCursor string   `json:"next_cursor"`
			}
			a := g.read(ctx, "read charges", g.cfg.Payments+"/charges?"+q.Encode(), g.admin, &page)
			if a.err != nil || a.status != http.StatusOK {
				b.unread = append(b.unread, "payments could not be read: "+a.describe())
				b.charges = nil
				break
			}
			b.charges = append(b.charges, page.Charges...)
			if page.NextCursor == "" {
				break
			}
			q.Set("cursor", page.NextCursor)
		}
	}
	g.led.mu.Lock()
	b.keys, b.named, b.unanswered = g.led.keys, g.led.named, g.led.unanswered
	g.led.mu.Unlock()
	return b, nil
}

// finishCancels asks again, until deadline, for the cancels whose answer did
// not say they were finished: the shop answers 503 for a cancel whose refund
// or release is not done, and asks to be asked again.
func (g *gen) finishCancels(ctx context.Context, deadline time.Time) {
	for time.Now().Before(deadline) {
		g.led.mu.Lock()
		open := maps.Clone(g.led.open)
		g.led.mu.Unlock()
		if len(open) == 0 {
			return
		}
		for id, u := range open {
			g.cancelOnce(ctx, u, id)
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

// read sends a GET of the check, retried (at most three times) when it fails.
func (g *gen) read(ctx context.Context, op, u, token string, out any) answer {
	var a answer
	for try := range 3 {
		a = g.roundTrip(ctx, req{op: op, method: "GET", url: u, token: token}, out)
		if a.err == nil && a.status < 500 || try == 2 || !waitRetry(ctx, a) {
			break
		}
	}
	return a
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
