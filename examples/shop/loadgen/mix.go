package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// action is one kind of customer behaviour in the mix.
type action struct {
	name   string
	weight int
	cost   int // requests it sends, taken from the rate limiter
	width  int // requests it has in flight at once, taken from the concurrency bound
	run    func(g *gen, ctx context.Context, r *rand.Rand)
}

// maxCost is the largest action cost.
const maxCost = 3

// Card numbers: Stripe's test cards.
const (
	cardOK       = "4242424242424242"
	cardDeclined = "4000000000000002"
)

// mix is what a customer does once there are enough of them, by weight.
var mix = []action{
	{"login", 4, 1, 1, (*gen).login},
	{"wrong password", 1, 1, 1, (*gen).wrongPassword},
	{"me", 4, 1, 1, (*gen).me},
	{"browse", 14, 3, 1, (*gen).browse},
	{"get product", 10, 1, 1, (*gen).getProduct},
	{"order", 23, 1, 1, func(g *gen, ctx context.Context, r *rand.Rand) { g.order(ctx, r, cardOK, false) }},
	{"order declined", 8, 1, 1, func(g *gen, ctx context.Context, r *rand.Rand) { g.order(ctx, r, cardDeclined, false) }},
	{"order short", 6, 1, 1, func(g *gen, ctx context.Context, r *rand.Rand) { g.order(ctx, r, cardOK, true) }},
	{"order retried", 5, 2, 1, (*gen).orderRetried},
	{"order retried at once", 4, 3, 3, (*gen).orderRetriedAtOnce},
	{"key reused", 2, 2, 1, (*gen).keyReused},
	{"cancel", 6, 2, 2, (*gen).cancel},
	{"order and cancel", 2, 2, 1, (*gen).orderAndCancel},
	{"cancel rejected", 1, 1, 1, (*gen).cancelRejected},
	{"get order", 3, 1, 1, (*gen).getOrder},
	{"someone else's order", 2, 1, 1, (*gen).otherOrder},
	{"list orders", 3, 1, 1, (*gen).listOrders},
	{"no token", 1, 1, 1, (*gen).noToken},
	{"customer creates product", 1, 1, 1, (*gen).customerCreatesProduct},
}

// anonymous is the part of the mix that needs no customer: what is sent
// while the first customers register, so that the rate is kept.
var anonymous = []action{
	{"browse", 14, 3, 1, (*gen).browse},
	{"get product", 10, 1, 1, (*gen).getProduct},
	{"no token", 1, 1, 1, (*gen).noToken},
}

// pick draws the next action: a registration while the run has fewer
// customers than cfg.Users (or all have placed their share), else one of mix
// (of anonymous while no customer has logged in yet; every action of mix
// once, in order, once one has). Registrations hash a
// password: at most half the concurrency bound is spent on them.
// Only the dispatcher calls it.
func (g *gen) pick() action {
	g.mu.Lock()
	need := g.nextUser < g.cfg.Users
	actions := mix
	if len(g.users) == 0 {
		actions = anonymous
	}
	if !need {
		need = true
		for _, u := range g.users {
			u.mu.Lock()
			free := u.placed < MaxOrdersPerUser
			u.mu.Unlock()
			if free {
				need = false
				break
			}
		}
		// One more at a time, once those registered have logged in.
		need = need && g.registering == 0 && len(g.loggedOut) == 0
	}
	need = need && g.registering < max(1, g.cfg.Concurrency/2)
	if need {
		g.nextUser++
		g.registering++
		n := g.nextUser
		g.mu.Unlock()
		return action{"register", 0, 2, 1, func(g *gen, ctx context.Context, _ *rand.Rand) { g.register(ctx, n) }}
	}
	if len(g.users) > 0 && g.tour < len(mix) {
		// Every action once first, so that even a short run sends each.
		a := mix[g.tour]
		g.tour++
		g.mu.Unlock()
		return a
	}
	g.mu.Unlock()
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	n := g.rng.IntN(total)
	for _, a := range actions {
		if n < a.weight {
			return a
		}
		n -= a.weight
	}
	return actions[0]
}

// customer returns a random customer with a token, or nil.
func (g *gen) customer(r *rand.Rand) *user {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.users) == 0 {
		return nil
	}
	return g.users[r.IntN(len(g.users))]
}

// orderingCustomer returns a random customer who may place another order,
// counting the placement, or nil.
func (g *gen) orderingCustomer(r *rand.Rand) *user {
	g.mu.Lock()
	users := slices.Clone(g.users)
	g.mu.Unlock()
	if len(users) == 0 {
		return nil
	}
	off := r.IntN(len(users))
	for i := range users {
		u := users[(off+i)%len(users)]
		u.mu.Lock()
		ok := u.placed < MaxOrdersPerUser
		if ok {
			u.placed++
		}
		u.mu.Unlock()
		if ok {
			return u
		}
	}
	return nil
}

func (g *gen) api(path string) string { return g.cfg.Target + path }

// register registers customer n and logs them in.
func (g *gen) register(ctx context.Context, n int) {
	defer func() {
		g.mu.Lock()
		g.registering--
		g.mu.Unlock()
	}()
	u := &user{Email: fmt.Sprintf("loadgen-%s-%d@example.com", g.runID(), n), Password: fmt.Sprintf("loadgen-password-%d", n)}
	var out struct {
		ID string `json:"id"`
	}
	a := g.send(ctx, req{op: "register", method: "POST", url: g.api("/api/users"),
		body: map[string]string{"email": u.Email, "password": u.Password, "name": fmt.Sprintf("Customer %d", n)}}, &out)
	if a.status != http.StatusCreated {
		return
	}
	u.ID = out.ID
	g.logIn(ctx, u)
}

// logIn logs u in; a customer who has no token yet joins the run's customers
// once it has one. A log-in refused for the gateway's rate limit (429) is
// expected: the next log-in action tries again.
func (g *gen) logIn(ctx context.Context, u *user) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	a := g.send(ctx, req{op: "login", method: "POST", url: g.api("/api/login"), expect: []int{http.StatusTooManyRequests},
		body: map[string]string{"email": u.Email, "password": u.Password}}, &tok)
	g.mu.Lock()
	defer g.mu.Unlock()
	if a.status != http.StatusOK || tok.AccessToken == "" {
		if u.bearer() == "" && !slices.Contains(g.loggedOut, u) {
			g.loggedOut = append(g.loggedOut, u)
		}
		return
	}
	u.mu.Lock()
	first := u.token == ""
	u.token = tok.AccessToken
	u.mu.Unlock()
	if first {
		g.users = append(g.users, u)
		g.loggedOut = slices.DeleteFunc(g.loggedOut, func(x *user) bool { return x == u })
	}
}

// login logs in a customer still waiting for a token, or logs a customer in
// again.
func (g *gen) login(ctx context.Context, r *rand.Rand) {
	g.mu.Lock()
	var u *user
	if len(g.loggedOut) > 0 {
		u = g.loggedOut[0]
	}
	g.mu.Unlock()
	if u == nil {
		if u = g.customer(r); u == nil {
			return
		}
	}
	g.logIn(ctx, u)
}

func (g *gen) wrongPassword(ctx context.Context, r *rand.Rand) {
	u := g.customer(r)
	if u == nil {
		return
	}
	g.send(ctx, req{op: "wrong password", method: "POST", url: g.api("/api/login"),
		expect: []int{http.StatusUnauthorized, http.StatusTooManyRequests},
		body:   map[string]string{"email": u.Email, "password": "not-" + u.Password}}, nil)
}

func (g *gen) me(ctx context.Context, r *rand.Rand) {
	if u := g.customer(r); u != nil {
		g.send(ctx, req{op: "me", method: "GET", url: g.api("/api/users/me"), token: u.bearer()}, nil)
	}
}

// browse reads up to three pages of the catalogue, following the cursor.
func (g *gen) browse(ctx context.Context, r *rand.Rand) {
	limit := 1 + r.IntN(5)
	cursor := ""
	for range 3 {
		u := g.api("/api/products?limit=" + strconv.Itoa(limit))
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			NextCursor string `json:"next_cursor"`
		}
		if a := g.send(ctx, req{op: "browse", method: "GET", url: u}, &page); a.status != http.StatusOK || page.NextCursor == "" {
			return
		}
		cursor = page.NextCursor
	}
}

// getProduct reads one of the run's products, or now and then one that does
// not exist (404).
func (g *gen) getProduct(ctx context.Context, r *rand.Rand) {
	if r.IntN(8) == 0 {
		g.send(ctx, req{op: "get product", method: "GET", url: g.api("/api/products/p_0000000000000000000000000000"),
			expect: []int{http.StatusNotFound}}, nil)
		return
	}
	p := g.products[r.IntN(len(g.products))]
	g.send(ctx, req{op: "get product", method: "GET", url: g.api("/api/products/" + p.ID)}, nil)
}

type line struct {
	ProductID string `json:"product_id"`
	Quantity  int64  `json:"quantity"`
}

type orderBody struct {
	Items      []line `json:"items"`
	CardNumber string `json:"card_number"`
}

// body draws one or two of the run's products, one to three units each; a
// short body asks for one unit more than a product ever had as its last
// item.
func (g *gen) body(r *rand.Rand, card string, short bool) orderBody {
	perm := r.Perm(len(g.products))
	n := 1
	if len(perm) > 1 && r.IntN(3) == 0 {
		n = 2
	}
	b := orderBody{CardNumber: card}
	for i := range n {
		b.Items = append(b.Items, line{ProductID: g.products[perm[i]].ID, Quantity: 1 + r.Int64N(3)})
	}
	if short {
		b.Items[n-1].Quantity = g.products[perm[n-1]].Initial + 1
	}
	return b
}

func (g *gen) newKey(r *rand.Rand) string { return fmt.Sprintf("lg-%s-%016x", g.runID(), r.Uint64()) }

// place sends one placement of b with key and records the answer. A 503 or
// a transport error is retried with the same key, as a client would, at
// most twice; a placement without a key ("") is not retried.
func (g *gen) place(ctx context.Context, u *user, key string, b orderBody, op string) (answer, string) {
	expect := []int{http.StatusConflict} // stock may run out for any order
	if b.CardNumber == cardDeclined {
		expect = append(expect, http.StatusPaymentRequired)
	}
	var a answer
	var id string
	for try := range 3 {
		var out struct {
			ID string `json:"id"`
		}
		a = g.send(ctx, req{op: op, method: "POST", url: g.api("/api/orders"), token: u.bearer(), key: key, body: b,
			expect: expect, retryAfterOK: true}, &out)
		id = out.ID
		if a.status == http.StatusPaymentRequired {
			id = a.str("order_id")
		}
		g.record(u, key, a, id)
		if a.interrupted || (a.err == nil && a.status < 500) || key == "" || try == 2 {
			break
		}
		if !waitRetry(ctx, a) {
			break
		}
	}
	return a, id
}

// waitRetry waits before a retry: the answer's Retry-After, at most a
// second, or a tenth of a second; false when ctx ended.
func waitRetry(ctx context.Context, a answer) bool {
	d := 100 * time.Millisecond
	if s, err := strconv.Atoi(a.header.Get("Retry-After")); err == nil && s > 0 {
		d = min(time.Duration(s)*time.Second, time.Second)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// record keeps what a placement's answer says for the check and the counts.
func (g *gen) record(u *user, key string, a answer, id string) {
	if a.interrupted {
		return
	}
	switch {
	case a.err == nil && a.status == http.StatusCreated:
		g.stats.outcome("confirmed", id)
		u.mu.Lock()
		if !slices.Contains(u.confirmed, id) {
			u.confirmed = append(u.confirmed, id)
		}
		u.mu.Unlock()
	case a.err == nil && a.status == http.StatusPaymentRequired:
		g.stats.outcome("rejected", id)
		u.mu.Lock()
		if !slices.Contains(u.rejected, id) {
			u.rejected = append(u.rejected, id)
		}
		u.mu.Unlock()
	case a.err == nil && a.status == http.StatusConflict && a.problem["product_id"] != nil:
		g.stats.outcome("short", "")
	default:
		g.stats.outcome("undecided", "")
	}
	g.led.placement(u.Email, key, a, id)
}

// order places one order with a fresh key (one plain order in eight
// without one).
func (g *gen) order(ctx context.Context, r *rand.Rand, card string, short bool) {
	u := g.orderingCustomer(r)
	if u == nil {
		return
	}
	op, key := "order", g.newKey(r)
	switch {
	case short:
		op = "order short"
	case card == cardDeclined:
		op = "order declined"
	case r.IntN(8) == 0:
		// The key is optional: some clients send none.
		op, key = "order without a key", ""
	}
	g.place(ctx, u, key, g.body(r, card, short), op)
}

// orderRetried places an order, then sends it again with the same key after
// the first answer: the same answer must come back.
func (g *gen) orderRetried(ctx context.Context, r *rand.Rand) {
	u := g.orderingCustomer(r)
	if u == nil {
		return
	}
	key, b := g.newKey(r), g.body(r, cardOK, false)
	g.place(ctx, u, key, b, "order")
	g.place(ctx, u, key, b, "order retried")
}

// orderRetriedAtOnce sends one order three times at once with one key.
func (g *gen) orderRetriedAtOnce(ctx context.Context, r *rand.Rand) {
	u := g.orderingCustomer(r)
	if u == nil {
		return
	}
	card := cardOK
	if r.IntN(4) == 0 {
		card = cardDeclined
	}
	key, b := g.newKey(r), g.body(r, card, false)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { g.place(ctx, u, key, b, "order retried at once") })
	}
	wg.Wait()
}

// keyReused places an order, then sends another body with its key: 422.
func (g *gen) keyReused(ctx context.Context, r *rand.Rand) {
	u := g.orderingCustomer(r)
	if u == nil {
		return
	}
	key, b := g.newKey(r), g.body(r, cardOK, false)
	if a, _ := g.place(ctx, u, key, b, "order"); a.err != nil || a.status >= 500 {
		return
	}
	other := b
	other.Items = slices.Clone(b.Items)
	other.Items[0].Quantity++
	a := g.send(ctx, req{op: "key reused", method: "POST", url: g.api("/api/orders"), token: u.bearer(), key: key, body: other,
		expect: []int{http.StatusUnprocessableEntity}}, nil)
	if a.status < 300 {
		// Another body under a used key was taken: remember its answer with
		// the key's others, so the check finds two orders for one key.
		g.led.placement(u.Email, key, a, "unexpected-2xx")
	}
}

// cancel cancels one of a customer's confirmed orders, sometimes twice at
// once.
func (g *gen) cancel(ctx context.Context, r *rand.Rand) {
	u, id := g.popConfirmed(r)
	if u == nil {
		return
	}
	n := 1
	if r.IntN(4) == 0 {
		n = 2
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { g.cancelOnce(ctx, u, id) })
	}
	wg.Wait()
}

// orderAndCancel places an order and cancels it at once, as a customer who
// changed their mind.
func (g *gen) orderAndCancel(ctx context.Context, r *rand.Rand) {
	u := g.orderingCustomer(r)
	if u == nil {
		return
	}
	a, id := g.place(ctx, u, g.newKey(r), g.body(r, cardOK, false), "order")
	if a.err != nil || a.status != http.StatusCreated || id == "" {
		return
	}
	u.mu.Lock()
	u.confirmed = slices.DeleteFunc(u.confirmed, func(x string) bool { return x == id })
	u.mu.Unlock()
	g.cancelOnce(ctx, u, id)
}

// cancelOnce asks for the cancel; a cancel not finished (503, no answer) is
// asked again in the settle phase.
func (g *gen) cancelOnce(ctx context.Context, u *user, id string) bool {
	var out struct {
		Status string `json:"status"`
	}
	a := g.send(ctx, req{op: "cancel", method: "POST", url: g.api("/api/orders/" + url.PathEscape(id) + "/cancel"), token: u.bearer(),
		retryAfterOK: true}, &out)
	if a.interrupted {
		return false
	}
	if a.err == nil && a.status == http.StatusOK && out.Status == "cancelled" {
		g.stats.outcome("cancelled", id)
		g.led.cancelled(id)
		return true
	}
	g.led.unfinished(u, id)
	return false
}

func (g *gen) popConfirmed(r *rand.Rand) (*user, string) {
	g.mu.Lock()
	users := slices.Clone(g.users)
	g.mu.Unlock()
	if len(users) == 0 {
		return nil, ""
	}
	off := r.IntN(len(users))
	for i := range users {
		u := users[(off+i)%len(users)]
		u.mu.Lock()
		if n := len(u.confirmed); n > 0 {
			k := r.IntN(n)
			id := u.confirmed[k]
			u.confirmed = slices.Delete(u.confirmed, k, k+1)
			u.mu.Unlock()
			return u, id
		}
		u.mu.Unlock()
	}
	return nil, ""
}

func (g *gen) anyOrder(r *rand.Rand, rejected bool) (*user, string) {
	g.mu.Lock()
	users := slices.Clone(g.users)
	g.mu.Unlock()
	if len(users) == 0 {
		return nil, ""
	}
	off := r.IntN(len(users))
	for i := range users {
		u := users[(off+i)%len(users)]
		u.mu.Lock()
		list := u.confirmed
		if rejected {
			list = u.rejected
		}
		id := ""
		if len(list) > 0 {
			id = list[r.IntN(len(list))]
		}
		u.mu.Unlock()
		if id != "" {
			return u, id
		}
	}
	return nil, ""
}

// cancelRejected asks to cancel a rejected order: 409.
func (g *gen) cancelRejected(ctx context.Context, r *rand.Rand) {
	if u, id := g.anyOrder(r, true); u != nil {
		g.send(ctx, req{op: "cancel rejected", method: "POST", url: g.api("/api/orders/" + url.PathEscape(id) + "/cancel"), token: u.bearer(),
			expect: []int{http.StatusConflict}}, nil)
	}
}

func (g *gen) getOrder(ctx context.Context, r *rand.Rand) {
	if u, id := g.anyOrder(r, false); u != nil {
		g.send(ctx, req{op: "get order", method: "GET", url: g.api("/api/orders/" + url.PathEscape(id)), token: u.bearer()}, nil)
	}
}

// otherOrder asks for a customer's order with another customer's token: 404.
func (g *gen) otherOrder(ctx context.Context, r *rand.Rand) {
	owner, id := g.anyOrder(r, false)
	other := g.customer(r)
	if owner == nil || other == nil || other == owner {
		return
	}
	g.send(ctx, req{op: "someone else's order", method: "GET", url: g.api("/api/orders/" + url.PathEscape(id)), token: other.bearer(),
		expect: []int{http.StatusNotFound}}, nil)
}

func (g *gen) listOrders(ctx context.Context, r *rand.Rand) {
	if u := g.customer(r); u != nil {
		g.send(ctx, req{op: "list orders", method: "GET", url: g.api("/api/orders"), token: u.bearer()}, nil)
	}
}

// noToken lists orders without a token: 401.
func (g *gen) noToken(ctx context.Context, _ *rand.Rand) {
	g.send(ctx, req{op: "no token", method: "GET", url: g.api("/api/orders"), expect: []int{http.StatusUnauthorized}}, nil)
}

// customerCreatesProduct tries to create a product without the admin
// scope: 403.
func (g *gen) customerCreatesProduct(ctx context.Context, r *rand.Rand) {
	if u := g.customer(r); u != nil {
		g.send(ctx, req{op: "customer creates product", method: "POST", url: g.api("/api/products"), token: u.bearer(),
			body: map[string]any{"name": "not allowed", "price_cents": 1, "stock": 1}, expect: []int{http.StatusForbidden}}, nil)
	}
}
