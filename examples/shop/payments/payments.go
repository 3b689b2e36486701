package payments

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/pier-go/pier/examples/shop/internal/ids"
	"github.com/pier-go/pier/examples/shop/internal/shopauth"
	"github.com/pier-go/pier/examples/shop/internal/web"
	"github.com/pier-go/pier/idempotency"
	"github.com/pier-go/pier/service"
)

// Stripe's test cards that this processor knows.
const (
	CardCaptures          = "4242424242424242"
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
)

// MaxAmount is the largest charge, in cents.
const MaxAmount = 1_000_000_000

// Payments serves the payments service's routes, all for the orders service,
// which calls them with its own token, scope internal (the gateway routes none
// of them):
//
//	POST /charges      (bearer, Idempotency-Key) {"reference","amount_cents","card_number"}
//	                   -> 201 the charge; 402 declined, with charge_id and decline_code
//	GET  /charges/{id} (bearer) the charge
//	GET  /charges?since=T&limit=N&cursor=C (bearer, scope admin)
//	                   {"charges":[...],"next_cursor"} the charges made at T (RFC 3339) or later
//	POST /refunds      (bearer) {"reference"} -> 200 the charge, refunded once (or voided)
type Payments struct {
	store       Store
	log         *slog.Logger
	delay       time.Duration
	failureRate float64
}

// Option configures New.
type Option func(*Payments) error

// WithDelay makes every charge and refund wait d before it is processed
// (returning early when the request's context ends). The default is 0.
func WithDelay(d time.Duration) Option {
	return func(p *Payments) error {
		if d < 0 {
			return fmt.Errorf("payments: negative delay %v", d)
		}
		p.delay = d
		return nil
	}
}

// WithFailureRate makes a share f (0 to 1) of charge and refund requests fail
// with 503 before anything is processed, as a processor outage would.
// The default is 0.
func WithFailureRate(f float64) Option {
	return func(p *Payments) error {
		if f < 0 || f > 1 {
			return fmt.Errorf("payments: failure rate %v is not within 0 and 1", f)
		}
		p.failureRate = f
		return nil
	}
}

// New mounts the payments routes on svc, with charges kept in store, their
// idempotency keys in keys (any idempotency store of the library) and bearer
// tokens checked by v.
func New(svc *service.Service, store Store, keys idempotency.Store, v *shopauth.Verifier, opts ...Option) (*Payments, error) {
	if svc == nil || store == nil || keys == nil || v == nil {
		return nil, errors.New("payments: New needs a service, a store, an idempotency store and a verifier")
	}
	p := &Payments{store: store, log: svc.Logger()}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("payments: nil option")
		}
		if err := o(p); err != nil {
			return nil, err
		}
	}
	authed := shopauth.Require(v, shopauth.InternalScope)
	// Keys are scoped to the caller as well as the route.
	idem, err := idempotency.Middleware(keys, idempotency.WithCallerScope(shopauth.Subject))
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	svc.Handle("POST /charges", authed(idem(http.HandlerFunc(p.charge))))
	svc.Handle("GET /charges/{id}", authed(http.HandlerFunc(p.get)))
	svc.Handle("GET /charges", shopauth.Require(v, shopauth.AdminScope)(http.HandlerFunc(p.list)))
	svc.Handle("POST /refunds", authed(http.HandlerFunc(p.refund)))
	return p, nil
}

// simulate applies the delay and the failure rate; false means it answered.
func (p *Payments) simulate(w http.ResponseWriter, r *http.Request) bool {
	if p.failureRate > 0 && rand.Float64() < p.failureRate {
		web.Unavailable(w, r, "the card processor is unavailable (simulated failure)")
		return false
	}
	if p.delay > 0 {
		t := time.NewTimer(p.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			web.Unavailable(w, r, "the card processor did not answer in time")
			return false
		}
	}
	return true
}

func (p *Payments) charge(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Reference   string `json:"reference"`
		AmountCents int64  `json:"amount_cents"`
		CardNumber  string `json:"card_number"`
	}
	if service.DecodeJSON(w, r, &in) != nil {
		return
	}
	switch {
	case in.Reference == "" || len(in.Reference) > 200:
		web.Fail(w, r, http.StatusBadRequest, "reference must be 1 to 200 bytes")
		return
	case in.AmountCents < 1 || in.AmountCents > MaxAmount:
		web.Fail(w, r, http.StatusBadRequest, fmt.Sprintf("amount_cents must be an integer from 1 to %d", MaxAmount))
		return
	case !ValidCard(in.CardNumber):
		web.Fail(w, r, http.StatusBadRequest, "card_number must be 12 to 19 digits that pass the Luhn check")
		return
	}
	if !p.simulate(w, r) {
		return
	}
	c := Charge{ID: ids.New("ch"), Reference: in.Reference, AmountCents: in.AmountCents,
		CardLast4: in.CardNumber[len(in.CardNumber)-4:], Status: Captured}
	switch in.CardNumber {
	case CardDeclined:
		c.Status, c.DeclineCode = Declined, "card_declined"
	case CardInsufficientFunds:
		c.Status, c.DeclineCode = Declined, "insufficient_funds"
	}
	c, created, err := p.store.Create(r.Context(), c)
	switch {
	case errors.Is(err, ErrVoided):
		web.Fail(w, r, http.StatusConflict, "reference "+in.Reference+" was voided by a refund; it takes no charge")
	case err != nil:
		web.Internal(w, r, p.log, err)
	case c.Status == Declined:
		web.Fail(w, r, http.StatusPaymentRequired, "the card was declined ("+c.DeclineCode+")",
			"charge_id", c.ID, "decline_code", c.DeclineCode)
	case created:
		_ = service.WriteJSON(w, http.StatusCreated, c)
	default:
		_ = service.WriteJSON(w, http.StatusOK, c)
	}
}

func (p *Payments) get(w http.ResponseWriter, r *http.Request) {
	c, err := p.store.ByID(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		web.Fail(w, r, http.StatusNotFound, "no charge "+r.PathValue("id"))
	case err != nil:
		web.Internal(w, r, p.log, err)
	default:
		_ = service.WriteJSON(w, http.StatusOK, c)
	}
}

// Paging bounds of GET /charges.
const (
	DefaultListLimit = 100
	MaxListLimit     = 500
)

type chargePage struct {
	Charges    []Charge `json:"charges"`
	NextCursor string   `json:"next_cursor"` // "" on the last page
}

// list serves the books of the processor to an admin: every charge (captured,
// declined, refunded or voided) made since a time, so that they can be
// reconciled with the orders.
func (p *Payments) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxListLimit {
			web.Fail(w, r, http.StatusBadRequest, fmt.Sprintf("limit must be an integer from 1 to %d", MaxListLimit))
			return
		}
		limit = n
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			web.Fail(w, r, http.StatusBadRequest, "since must be an RFC 3339 time")
			return
		}
		since = t
	}
	after := ""
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) == 0 {
			web.Fail(w, r, http.StatusBadRequest, "cursor is not one this service gave out")
			return
		}
		after = string(b)
	}
	// One more than asked tells whether there is a next page.
	cs, err := p.store.List(r.Context(), since, after, limit+1)
	if err != nil {
		web.Internal(w, r, p.log, err)
		return
	}
	out := chargePage{Charges: cs}
	if len(cs) > limit {
		out.Charges = cs[:limit]
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(cs[limit-1].ID))
	}
	_ = service.WriteJSON(w, http.StatusOK, out)
}

func (p *Payments) refund(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Reference string `json:"reference"`
	}
	if service.DecodeJSON(w, r, &in) != nil {
		return
	}
	if in.Reference == "" {
		web.Fail(w, r, http.StatusBadRequest, "reference is required")
		return
	}
	if !p.simulate(w, r) {
		return
	}
	c, _, err := p.store.Refund(r.Context(), in.Reference)
	if err != nil {
		web.Internal(w, r, p.log, err)
		return
	}
	_ = service.WriteJSON(w, http.StatusOK, c)
}

// ValidCard reports whether n is 12 to 19 digits that pass the Luhn check.
func ValidCard(n string) bool {
	if len(n) < 12 || len(n) > 19 {
		return false
	}
	sum := 0
	for i := range len(n) {
		c := n[len(n)-1-i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
