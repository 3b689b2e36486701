package orders

import (
	"strings"
	"testing"
)

// TestMain, with goleak, is in store_suite_test.go.

func TestPlaceOrderValidation(t *testing.T) {
	type item = struct {
		ProductID string `json:"product_id"`
		Quantity  int64  `json:"quantity"`
	}
	many := make([]item, MaxItems+1)
	for i := range many {
		many[i] = item{ProductID: "p_" + strings.Repeat("x", i+1), Quantity: 1}
	}
	for _, c := range []struct {
		name  string
		items []item
		card  string
		want  string // a part of the error, "" for none
	}{
		{"valid", []item{{"p_1", 2}, {"p_2", 1}}, "4242424242424242", ""},
		{"no items", nil, "4242424242424242", "items must hold"},
		{"too many items", many, "4242424242424242", "items must hold"},
		{"no product", []item{{"", 1}}, "4242424242424242", "product_id"},
		{"zero quantity", []item{{"p_1", 0}}, "4242424242424242", "quantity"},
		{"too many units", []item{{"p_1", MaxQuantity + 1}}, "4242424242424242", "quantity"},
		{"a product twice", []item{{"p_1", 1}, {"p_1", 1}}, "4242424242424242", "listed twice"},
		{"short card", []item{{"p_1", 1}}, "4242", "card_number"},
		{"card with letters", []item{{"p_1", 1}}, "4242x24242424242", "card_number"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := placeOrder{Items: c.items, CardNumber: c.card}.validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("validate: %v, want an error about %q", err, c.want)
			}
		})
	}
}

// TestReservationIDsAreStable: a retry of an order reserves under the same
// ids, and two orders never share one.
func TestReservationIDsAreStable(t *testing.T) {
	first, retry := ReservationID("o_1", "p_1"), ReservationID("o_1", "p_1")
	if first != retry {
		t.Fatalf("one order and product, two ids: %q and %q", first, retry)
	}
	for _, other := range []string{ReservationID("o_2", "p_1"), ReservationID("o_1", "p_2")} {
		if other == first {
			t.Fatalf("two reservations share the id %q", first)
		}
	}
}
