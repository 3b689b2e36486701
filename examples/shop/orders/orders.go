package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"golang.org/x/oauth2"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/examples/shop/internal/ids"
	"github.com/pier-go/pier/examples/shop/internal/shopauth"
	"github.com/pier-go/pier/examples/shop/internal/web"
	"github.com/pier-go/pier/idempotency"
	"github.com/pier-go/pier/service"
)

// Bounds on an order.
const (
	MaxItems    = 50
	MaxQuantity = 1000
	// MaxTotal is the largest order total, in cents: the processor's limit.
	MaxTotal = 1_000_000_000
	// ListLimit is how many orders GET /orders returns: the newest.
	ListLimit = 100
	// CompensationTimeout bounds the releases and refunds that undo a failed
	// step. They run even when the caller has gone: a saga half undone would
	// hold stock or money.
	CompensationTimeout = 10 * time.Second
)

// Orders serves the orders service's routes:
//
//	POST /orders             (bearer; optional Idempotency-Key) {"items":[{"product_id","quantity"}],"card_number"}
//	                         -> 201 the order, "confirmed"; 409 short stock; 402 declined; 503 undecided
//	GET  /orders             (bearer) {"orders":[...]} the caller's, newest first
//	GET  /orders/{id}        (bearer) the caller's order; 404 for anyone else's
//	POST /orders/{id}/cancel (bearer) -> 200 the order, "cancelled"
type Orders struct {
	store   Store
	client  *http.Client
	service oauth2.TokenSource // orders' own token, for products and payments
	log     *slog.Logger
}

// New mounts the orders routes on svc, with orders kept in store, the
// Idempotency-Keys of POST /orders in keys, and bearer tokens checked by v.
// It calls users with the caller's token, and products and payments with its
// own, from tokens (shopauth.ServiceTokens), all through svc.Client().
func New(svc *service.Service, store Store, keys idempotency.Store, v *shopauth.Verifier, tokens oauth2.TokenSource) (*Orders, error) {
	if svc == nil || store == nil || keys == nil || v == nil || tokens == nil {
		return nil, errors.New("orders: New needs a service, a store, an idempotency store, a verifier and a token source")
	}
	o := &Orders{store: store, client: svc.Client(), service: tokens, log: svc.Logger()}
	authed := shopauth.Require(v)
	// A key is the caller's: the scope holds the verified subject, so two
	// users who pick the same key never share an answer.
	idem, err := idempotency.Middleware(keys, idempotency.WithCallerScope(shopauth.Subject))
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	svc.Handle("POST /orders", authed(idem(http.HandlerFunc(o.create))))
	svc.Handle("GET /orders", authed(http.HandlerFunc(o.list)))
	svc.Handle("GET /orders/{id}", authed(http.HandlerFunc(o.get)))
	svc.Handle("POST /orders/{id}/cancel", authed(http.HandlerFunc(o.cancel)))
	return o, nil
}

type orderJSON struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason,omitempty"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	CreatedAt  time.Time `json:"created_at"`
}

func view(o Order) orderJSON {
	return orderJSON{ID: o.ID, Status: o.Status, Reason: o.Reason, Items: o.Items, TotalCents: o.TotalCents, CreatedAt: o.CreatedAt.UTC()}
}

type placeOrder struct {
	Items []struct {
		ProductID string `json:"product_id"`
		Quantity  int64  `json:"quantity"`
	} `json:"items"`
	CardNumber string `json:"card_number"`
}

func (in placeOrder) validate() error {
	if len(in.Items) == 0 || len(in.Items) > MaxItems {
		return fmt.Errorf("items must hold 1 to %d items", MaxItems)
	}
	seen := map[string]bool{}
	for i, it := range in.Items {
		switch {
		case it.ProductID == "" || len(it.ProductID) > 100:
			return fmt.Errorf("items[%d].product_id must be 1 to 100 bytes", i)
		case it.Quantity < 1 || it.Quantity > MaxQuantity:
			return fmt.Errorf("items[%d].quantity must be an integer from 1 to %d", i, MaxQuantity)
		case seen[it.ProductID]:
			return fmt.Errorf("items[%d]: product %s is listed twice; give its total quantity once", i, it.ProductID)
		}
		seen[it.ProductID] = true
	}
	if n := len(in.CardNumber); n < 12 || n > 19 || strings.Trim(in.CardNumber, "0123456789") != "" {
		return errors.New("card_number must be 12 to 19 digits")
	}
	return nil
}

// ReservationID is the reservation of productID for order: the same for every
// retry of the order, so that products reserves it once.
func ReservationID(order, productID string) string { return order + "." + productID }

// chargeKey is the Idempotency-Key of the order's charge.
func chargeKey(order string) string { return "charge-" + order }

func (o *Orders) create(w http.ResponseWriter, r *http.Request) {
	var in placeOrder
	if service.DecodeJSON(w, r, &in) != nil {
		return
	}
	if err := in.validate(); err != nil {
		web.Fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	claims, _ := shopauth.FromContext(ctx)
	token := r.Header.Get("Authorization")
	order := Order{ID: ids.New("o"), UserID: claims.Subject, Status: Pending, CreatedAt: time.Now().Truncate(time.Millisecond)}
	for _, it := range in.Items {
		order.Items = append(order.Items, Item{ProductID: it.ProductID, Quantity: it.Quantity})
	}

	// 1. Record the order, pending.
	if err := o.store.Create(ctx, order); err != nil {
		web.Internal(w, r, o.log, err)
		return
	}
	s := &saga{o: o, caller: token, order: &order}

	// 2. The caller must be a user (the token may outlive its account).
	var user struct{ ID string }
	res := s.call(ctx, http.MethodGet, "http://users/users/"+url.PathEscape(claims.Subject), s.caller, "", nil, &user)
	switch {
	case res.err == nil && res.status == http.StatusOK:
	case res.status == http.StatusNotFound || res.status == http.StatusUnauthorized:
		s.abort(w, r, http.StatusUnauthorized, "the token's user does not exist")
		return
	default:
		s.undecided(w, r, "users", res, false)
		return
	}

	// 3. Reserve every item, at the price products holds.
	for i := range order.Items {
		it := &order.Items[i]
		id := ReservationID(order.ID, it.ProductID)
		s.reserved = append(s.reserved, id) // released on failure, even when the answer was lost
		var rsv struct {
			PriceCents int64 `json:"price_cents"`
		}
		res := s.callService(ctx, http.MethodPost, "http://products/reservations", id,
			map[string]any{"id": id, "product_id": it.ProductID, "quantity": it.Quantity}, &rsv)
		switch {
		case res.err == nil && (res.status == http.StatusCreated || res.status == http.StatusOK):
			it.PriceCents = rsv.PriceCents
			order.TotalCents += rsv.PriceCents * it.Quantity
		case res.status == http.StatusConflict && res.problem["available"] != nil:
			s.abort(w, r, http.StatusConflict, res.detail(), "product_id", it.ProductID, "available", res.problem["available"])
			return
		case res.status == http.StatusNotFound:
			s.abort(w, r, http.StatusNotFound, "no product "+it.ProductID, "product_id", it.ProductID)
			return
		default:
			s.undecided(w, r, "products", res, false)
			return
		}
	}

	if order.TotalCents > MaxTotal {
		s.abort(w, r, http.StatusBadRequest, fmt.Sprintf("the order's total, %d cents, is over the limit of %d", order.TotalCents, MaxTotal))
		return
	}

	// 4. Charge the total.
	var charge struct {
		ID string `json:"id"`
	}
	res = s.callService(ctx, http.MethodPost, "http://payments/charges", chargeKey(order.ID),
		map[string]any{"reference": order.ID, "amount_cents": order.TotalCents, "card_number": in.CardNumber}, &charge)
	switch {
	case res.err == nil && (res.status == http.StatusCreated || res.status == http.StatusOK):
	case res.status == http.StatusPaymentRequired:
		reason, _ := res.problem["decline_code"].(string)
		if reason == "" {
			reason = "card_declined"
		}
		s.release(ctx)
		if err := s.settle(ctx); err != nil {
			web.Internal(w, r, o.log, err)
			return
		}
		order.Status, order.Reason = Rejected, reason
		cctx, cancel := compCtx(ctx)
		defer cancel()
		if _, err := o.store.Transition(cctx, Pending, order); err != nil {
			web.Internal(w, r, o.log, err)
			return
		}
		web.Fail(w, r, http.StatusPaymentRequired, "the card was declined ("+reason+"); the order is rejected",
			"order_id", order.ID, "decline_code", reason)
		return
	case res.status == http.StatusBadRequest:
		s.abort(w, r, http.StatusBadRequest, res.detail())
		return
	default:
		s.undecided(w, r, "payments", res, true)
		return
	}

	// 5. Confirmed.
	order.Status = Confirmed
	if ok, err := o.store.Transition(ctx, Pending, order); err != nil || !ok {
		// The charge is made and the stock held, but the order cannot say so:
		// undo both rather than leave money taken for a pending order.
		s.refund(ctx)
		s.release(ctx)
		if s.settle(ctx) == nil {
			s.forget(ctx)
		}
		web.Internal(w, r, o.log, errors.Join(err, fmt.Errorf("orders: confirm %s: ok=%v", order.ID, ok)))
		return
	}
	w.Header().Set("Location", "/orders/"+order.ID)
	_ = service.WriteJSON(w, http.StatusCreated, view(order))
}

// saga holds what a placement has done, to undo it. Its steps take the
// context of the request (or sweep) they serve; those that answer take the
// request too.
type saga struct {
	o        *Orders
	caller   string // the caller's Authorization header
	order    *Order
	reserved []string
	owed     []Step // undo steps that failed
}

// compCtx is the context compensations run in: ctx's values and trace,
// without its cancellation, bounded by CompensationTimeout.
func compCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), CompensationTimeout)
}

// forget deletes the pending order row of a placement that did not happen.
func (s *saga) forget(ctx context.Context) {
	ctx, cancel := compCtx(ctx)
	defer cancel()
	if err := s.o.store.Delete(ctx, s.order.ID); err != nil {
		s.o.log.ErrorContext(ctx, "delete aborted order", "order", s.order.ID, "error", err)
	}
}

// release releases every reservation attempted; one that fails is owed
// (settle).
func (s *saga) release(ctx context.Context) {
	ctx, cancel := compCtx(ctx)
	defer cancel()
	for _, id := range s.reserved {
		if !s.do(ctx, Step{Kind: StepRelease, Target: id, OrderID: s.order.ID}) {
			s.owed = append(s.owed, Step{Kind: StepRelease, Target: id, OrderID: s.order.ID})
		}
	}
	s.reserved = nil
}

// refund refunds the order's charge, or voids its reference when no charge
// came; when that fails, it is owed (settle).
func (s *saga) refund(ctx context.Context) {
	ctx, cancel := compCtx(ctx)
	defer cancel()
	st := Step{Kind: StepRefund, Target: s.order.ID, OrderID: s.order.ID}
	if !s.do(ctx, st) {
		s.owed = append(s.owed, st)
	}
}

// do runs one undo step against products or payments.
func (s *saga) do(ctx context.Context, st Step) bool {
	var res callResult
	switch st.Kind {
	case StepRelease:
		res = s.callService(ctx, http.MethodDelete, "http://products/reservations/"+url.PathEscape(st.Target), "", nil, nil)
	case StepRefund:
		res = s.callService(ctx, http.MethodPost, "http://payments/refunds", "refund-"+st.Target,
			map[string]any{"reference": st.Target}, nil)
	default:
		return false
	}
	if res.err != nil || res.status != http.StatusOK {
		s.o.log.WarnContext(ctx, "undo step failed", "step", st.Kind, "target", st.Target, "order", st.OrderID,
			"status", res.status, "error", res.err)
		return false
	}
	return true
}

// settle records the undo steps that failed for the sweeper (Sweep), so that
// the order row can go; an error means they could not be recorded, and the
// order must stay pending for the sweeper to undo whole.
func (s *saga) settle(ctx context.Context) error {
	if len(s.owed) == 0 {
		return nil
	}
	ctx, cancel := compCtx(ctx)
	defer cancel()
	if err := s.o.store.Owe(ctx, s.owed); err != nil {
		s.o.log.ErrorContext(ctx, "record owed undo steps", "order", s.order.ID, "error", err)
		return err
	}
	s.owed = nil
	return nil
}

// abort undoes a placement that failed for good: releases, deletes the order
// row, and answers status. A release that fails is owed to the sweeper.
func (s *saga) abort(w http.ResponseWriter, r *http.Request, status int, detail string, extra ...any) {
	ctx := r.Context()
	s.release(ctx)
	if s.settle(ctx) == nil {
		s.forget(ctx)
	}
	web.Fail(w, r, status, detail, extra...)
}

// undecided undoes a placement whose step on service could not be decided,
// refunding first when a charge may have been made, and answers 503 with
// Retry-After.
// A refund or a release that fails is owed to the sweeper (Sweep), which
// finishes it once the service is back.
func (s *saga) undecided(w http.ResponseWriter, r *http.Request, service string, res callResult, charged bool) {
	ctx := r.Context()
	if charged && !notSent(res.err) {
		s.refund(ctx)
	}
	s.release(ctx)
	if s.settle(ctx) == nil {
		s.forget(ctx)
	}
	web.Unavailable(w, r, fmt.Sprintf("%s could not be reached or did not decide (%s); nothing is reserved or charged, try again", service, res.why()))
}

// errNoServiceToken: the orders service could not get its own token, so the
// call was not made.
var errNoServiceToken = errors.New("orders: no service token")

// notSent reports whether err says the request never reached the service.
func notSent(err error) bool {
	return errors.Is(err, discovery.ErrNoInstances) || errors.Is(err, circuitbreaker.ErrOpen) ||
		errors.Is(err, errNoServiceToken)
}

// callResult is what a call to another service came back with.
type callResult struct {
	status  int
	problem map[string]any // the problem document of an error answer
	err     error
}

func (c callResult) detail() string {
	d, _ := c.problem["detail"].(string)
	return d
}

func (c callResult) why() string {
	switch {
	case c.err != nil && errors.Is(c.err, discovery.ErrNoInstances):
		return "no instance is up"
	case c.err != nil && errors.Is(c.err, circuitbreaker.ErrOpen):
		return "its circuit breaker is open"
	case c.err != nil && errors.Is(c.err, errNoServiceToken):
		return "the orders service could not get its own token from users"
	case c.err != nil:
		return "no answer"
	case c.status != 0:
		return fmt.Sprintf("answered %d", c.status)
	}
	return "compensation failed"
}

// callService calls products or payments with the orders service's own token.
func (s *saga) callService(ctx context.Context, method, u, key string, body, out any) callResult {
	tok, err := s.o.service.Token()
	if err != nil {
		return callResult{err: fmt.Errorf("%w: %w", errNoServiceToken, err)}
	}
	return s.call(ctx, method, u, "Bearer "+tok.AccessToken, key, body, out)
}

// call sends a JSON request to another service through the discovery-aware
// client, with authorization as its Authorization header and, when key is
// set, an Idempotency-Key (which also lets the client retry a POST). A 2xx
// answer is decoded into out; an error answer's problem document into the
// result.
func (s *saga) call(ctx context.Context, method, u, authorization, key string, body, out any) callResult {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return callResult{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return callResult{err: err}
	}
	req.Header.Set("Authorization", authorization)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(idempotency.Header, key)
	}
	resp, err := s.o.client.Do(req)
	if err != nil {
		return callResult{err: err}
	}
	defer resp.Body.Close()
	res := callResult{status: resp.StatusCode}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return callResult{status: resp.StatusCode, err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				res.err = fmt.Errorf("orders: %s %s: %w", method, u, err)
			}
		}
		return res
	}
	_ = json.Unmarshal(data, &res.problem)
	return res
}

func (o *Orders) list(w http.ResponseWriter, r *http.Request) {
	c, _ := shopauth.FromContext(r.Context())
	os, err := o.store.List(r.Context(), c.Subject, ListLimit)
	if err != nil {
		web.Internal(w, r, o.log, err)
		return
	}
	out := struct {
		Orders []orderJSON `json:"orders"`
	}{Orders: make([]orderJSON, 0, len(os))}
	for _, x := range os {
		out.Orders = append(out.Orders, view(x))
	}
	_ = service.WriteJSON(w, http.StatusOK, out)
}

// own returns the caller's order id, answering 404 for anyone else's.
func (o *Orders) own(w http.ResponseWriter, r *http.Request) (Order, bool) {
	c, _ := shopauth.FromContext(r.Context())
	id := r.PathValue("id")
	x, err := o.store.Get(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && x.UserID != c.Subject):
		// Someone else's order is as unknown as one that does not exist.
		web.Fail(w, r, http.StatusNotFound, "no order "+id)
		return Order{}, false
	case err != nil:
		web.Internal(w, r, o.log, err)
		return Order{}, false
	}
	return x, true
}

func (o *Orders) get(w http.ResponseWriter, r *http.Request) {
	if x, ok := o.own(w, r); ok {
		_ = service.WriteJSON(w, http.StatusOK, view(x))
	}
}

func (o *Orders) cancel(w http.ResponseWriter, r *http.Request) {
	x, ok := o.own(w, r)
	if !ok {
		return
	}
	switch x.Status {
	case Rejected:
		web.Fail(w, r, http.StatusConflict, "order "+x.ID+" was rejected: nothing was charged and nothing is held, so there is nothing to cancel")
		return
	case Pending:
		web.Fail(w, r, http.StatusConflict, "order "+x.ID+" is being placed; ask again once it is confirmed")
		return
	case Confirmed:
		// The conditional update decides who cancels.
		next := x
		next.Status = Cancelled
		if _, err := o.store.Transition(r.Context(), Confirmed, next); err != nil {
			web.Internal(w, r, o.log, err)
			return
		}
		if x, _ = o.store.Get(r.Context(), x.ID); x.Status != Cancelled {
			web.Internal(w, r, o.log, fmt.Errorf("orders: cancel %s: status %q", x.ID, x.Status))
			return
		}
	}
	if !x.Compensated {
		// Refund and release. Payments refunds a reference once and products
		// releases a reservation once, so a cancel asked again (or at the same
		// time) that gets here changes nothing more. A step that fails now
		// (payments or products down) is owed to the sweeper, which does it
		// once the service is back.
		ctx := r.Context()
		s := &saga{o: o, caller: r.Header.Get("Authorization"), order: &x}
		for _, it := range x.Items {
			s.reserved = append(s.reserved, ReservationID(x.ID, it.ProductID))
		}
		s.refund(ctx)
		s.release(ctx)
		if err := s.settle(ctx); err != nil {
			web.Unavailable(w, r, "order "+x.ID+" is cancelled but its refund or stock release is not done yet; ask again to finish it")
			return
		}
		done := x
		done.Compensated = true
		if _, err := o.store.Transition(r.Context(), Cancelled, done); err != nil {
			web.Internal(w, r, o.log, err)
			return
		}
		x = done
	}
	_ = service.WriteJSON(w, http.StatusOK, view(x))
}
