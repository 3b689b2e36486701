package products

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pier-go/pier/examples/shop/internal/ids"
	"github.com/pier-go/pier/examples/shop/internal/shopauth"
	"github.com/pier-go/pier/examples/shop/internal/web"
	"github.com/pier-go/pier/service"
)

// Paging bounds of GET /products.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Bounds on a new product.
const (
	MaxName  = 200           // characters
	MaxPrice = 100_000_000   // cents: a million in the currency's unit
	MaxStock = 1_000_000_000 // units
	MaxUnits = 1_000_000     // units in one reservation
)

// Products serves the products service's routes:
//
//	GET    /products?limit=N&cursor=C  {"products":[...],"next_cursor":"..."}
//	GET    /products/{id}              the product, 404 unknown
//	POST   /products                   (bearer, scope admin) {"name","price_cents","stock"} -> 201
//	POST   /products/{id}/restock      (bearer, scope admin) {"quantity"} -> 200 the product, its stock raised
//	POST   /reservations               (bearer, scope internal) {"id","product_id","quantity"} -> 201, or 200 for a repeat
//	DELETE /reservations/{id}          (bearer, scope internal) -> 200, the stock put back once
//
// The reservation routes are for the orders service, with its own token; the
// gateway does not route them.
type Products struct {
	store Store
	log   *slog.Logger
}

// New mounts the products routes on svc, with products kept in store and
// bearer tokens checked by v.
func New(svc *service.Service, store Store, v *shopauth.Verifier) (*Products, error) {
	if svc == nil || store == nil || v == nil {
		return nil, errors.New("products: New needs a service, a store and a verifier")
	}
	p := &Products{store: store, log: svc.Logger()}
	internal := shopauth.Require(v, shopauth.InternalScope)
	admin := shopauth.Require(v, shopauth.AdminScope)
	svc.HandleFunc("GET /products", p.list)
	svc.HandleFunc("GET /products/{id}", p.get)
	svc.Handle("POST /products", admin(http.HandlerFunc(p.create)))
	svc.Handle("POST /products/{id}/restock", admin(http.HandlerFunc(p.restock)))
	svc.Handle("POST /reservations", internal(http.HandlerFunc(p.reserve)))
	svc.Handle("DELETE /reservations/{id}", internal(http.HandlerFunc(p.release)))
	return p, nil
}

type page struct {
	Products   []Product `json:"products"`
	NextCursor string    `json:"next_cursor"` // "" on the last page
}

// The cursor is opaque to clients: the last id of the page, base64url-encoded,
// so that nobody builds one by hand and the format can change.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor(c string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "p_") {
		return "", false
	}
	return string(b), true
}

func (p *Products) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			web.Fail(w, r, http.StatusBadRequest, fmt.Sprintf("limit must be an integer from 1 to %d", MaxLimit))
			return
		}
		limit = n
	}
	after := ""
	if c := q.Get("cursor"); c != "" {
		var ok bool
		if after, ok = decodeCursor(c); !ok {
			web.Fail(w, r, http.StatusBadRequest, "cursor is not one this service gave out")
			return
		}
	}
	// One more than asked tells whether there is a next page.
	ps, err := p.store.List(r.Context(), after, limit+1)
	if err != nil {
		web.Internal(w, r, p.log, err)
		return
	}
	out := page{Products: ps}
	if len(ps) > limit {
		out.Products = ps[:limit]
		out.NextCursor = encodeCursor(ps[limit-1].ID)
	}
	_ = service.WriteJSON(w, http.StatusOK, out)
}

func (p *Products) get(w http.ResponseWriter, r *http.Request) {
	pr, err := p.store.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		web.Fail(w, r, http.StatusNotFound, "no product "+r.PathValue("id"))
	case err != nil:
		web.Internal(w, r, p.log, err)
	default:
		_ = service.WriteJSON(w, http.StatusOK, pr)
	}
}

// NewProduct is what an admin gives to create a product.
type NewProduct struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

// Validate says what is wrong with np, or returns nil.
func (np NewProduct) Validate() error {
	name := strings.TrimSpace(np.Name)
	switch {
	case name == "" || utf8.RuneCountInString(name) > MaxName:
		return fmt.Errorf("name must be 1 to %d characters", MaxName)
	case np.PriceCents < 1 || np.PriceCents > MaxPrice:
		return fmt.Errorf("price_cents must be an integer from 1 to %d", MaxPrice)
	case np.Stock < 0 || np.Stock > MaxStock:
		return fmt.Errorf("stock must be an integer from 0 to %d", MaxStock)
	}
	return nil
}

func (p *Products) create(w http.ResponseWriter, r *http.Request) {
	var in NewProduct
	if service.DecodeJSON(w, r, &in) != nil {
		return
	}
	if err := in.Validate(); err != nil {
		web.Fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	pr := Product{ID: ids.New("p"), Name: strings.TrimSpace(in.Name), PriceCents: in.PriceCents, Stock: in.Stock}
	if err := p.store.Create(r.Context(), pr); err != nil {
		web.Internal(w, r, p.log, err)
		return
	}
	w.Header().Set("Location", "/products/"+pr.ID)
	_ = service.WriteJSON(w, http.StatusCreated, pr)
}

func (p *Products) reserve(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ID        string `json:"id"`
		ProductID string `json:"product_id"`
		Quantity  int64  `json:"quantity"`
	}
	if service.DecodeJSON(w, r, &in) != nil {
		return
	}
	switch {
	case in.ID == "" || len(in.ID) > 200:
		web.Fail(w, r, http.StatusBadRequest, "id must be 1 to 200 bytes")
		return
	case in.ProductID == "":
		web.Fail(w, r, http.StatusBadRequest, "product_id is required")
		return
	case in.Quantity < 1 || in.Quantity > MaxUnits:
		web.Fail(w, r, http.StatusBadRequest, fmt.Sprintf("quantity must be an integer from 1 to %d", MaxUnits))
		return
	}
	res, created, err := p.store.Reserve(r.Context(), Reservation{ID: in.ID, ProductID: in.ProductID, Quantity: in.Quantity})
	var short *InsufficientError
	switch {
	case errors.As(err, &short):
		web.Fail(w, r, http.StatusConflict, fmt.Sprintf("insufficient stock of %s: %d asked, %d available", short.ProductID, in.Quantity, short.Available),
			"product_id", short.ProductID, "available", short.Available)
	case errors.Is(err, ErrNotFound):
		web.Fail(w, r, http.StatusNotFound, "no product "+in.ProductID, "product_id", in.ProductID)
	case errors.Is(err, ErrReleased):
		web.Fail(w, r, http.StatusConflict, "reservation "+in.ID+" was released and cannot reserve again")
	case errors.Is(err, ErrMismatch):
		web.Fail(w, r, http.StatusUnprocessableEntity, "reservation "+in.ID+" holds another product or quantity")
	case err != nil:
		web.Internal(w, r, p.log, err)
	case created:
		_ = service.WriteJSON(w, http.StatusCreated, res)
	default:
		_ = service.WriteJSON(w, http.StatusOK, res)
	}
}

func (p *Products) release(w http.ResponseWriter, r *http.Request) {
	res, err := p.store.Release(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Internal(w, r, p.log, err)
		return
	}
	_ = service.WriteJSON(w, http.StatusOK, res)
}

func (p *Products) restock(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Quantity int64 `json:"quantity"`
	}
	if service.DecodeJSON(w, r, &in) != nil {
		return
	}
	if in.Quantity < 1 || in.Quantity > MaxUnits {
		web.Fail(w, r, http.StatusBadRequest, fmt.Sprintf("quantity must be an integer from 1 to %d", MaxUnits))
		return
	}
	pr, err := p.store.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		web.Fail(w, r, http.StatusNotFound, "no product "+r.PathValue("id"))
		return
	case err != nil:
		web.Internal(w, r, p.log, err)
		return
	case pr.Stock+in.Quantity > MaxStock:
		web.Fail(w, r, http.StatusBadRequest, fmt.Sprintf("stock would exceed %d", MaxStock))
		return
	}
	pr, err = p.store.Restock(r.Context(), pr.ID, in.Quantity)
	switch {
	case errors.Is(err, ErrNotFound):
		web.Fail(w, r, http.StatusNotFound, "no product "+r.PathValue("id"))
	case err != nil:
		web.Internal(w, r, p.log, err)
	default:
		_ = service.WriteJSON(w, http.StatusOK, pr)
	}
}
