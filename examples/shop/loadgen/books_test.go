package loadgen

import (
	"strings"
	"testing"
)

func ord(id, status string, total int64, items ...any) order {
	o := order{ID: id, Status: status, TotalCents: total}
	for i := 0; i+1 < len(items); i += 2 {
		o.Items = append(o.Items, struct {
			ProductID string `json:"product_id"`
			Quantity  int64  `json:"quantity"`
		}{items[i].(string), int64(items[i+1].(int))})
	}
	return o
}

// balanced is a run whose books balance: p1 started at 10, 3 units are in a
// confirmed order, 2 were in a cancelled one and came back; o3 was declined.
func balanced() *books {
	return &books{
		products: []productBook{{ID: "p1", Price: 100, Initial: 10, Stock: 7}},
		orders: map[string][]order{
			"a@x": {ord("o1", "confirmed", 300, "p1", 3), ord("o2", "cancelled", 200, "p1", 2)},
			"b@x": {ord("o3", "rejected", 100, "p1", 1)},
		},
		keys:       map[string][]string{"k1": {"o1", "o1"}, "k2": {"o2"}, "k3": {"o3", ""}},
		named:      map[string]map[string]bool{"a@x": {"o1": true, "o2": true}, "b@x": {"o3": true}},
		unanswered: map[string]int{},
		charges: []charge{
			{ID: "ch1", Reference: "o1", AmountCents: 300, Status: "captured"},
			{ID: "ch2", Reference: "o2", AmountCents: 200, Status: "refunded"},
			{ID: "ch3", Reference: "o3", AmountCents: 100, Status: "declined"},
			{ID: "ch4", Reference: "o_aborted", AmountCents: 100, Status: "refunded"},
		},
	}
}

// TestCheckFindsEachViolation: every rule of the books, broken on its own in
// a balanced run, gives its violation.
func TestCheckFindsEachViolation(t *testing.T) {
	if v := balanced().Check(); len(v) != 0 {
		t.Fatalf("balanced books: violations %q", v)
	}
	for _, tc := range []struct {
		name  string
		spoil func(b *books)
		want  string
	}{
		{"stock lost", func(b *books) { b.products[0].Stock = 6 }, "initial stock 10 != stock 6 + 3 units in confirmed orders (+1 units unaccounted for)"},
		{"stock below zero", func(b *books) { b.products[0].Initial, b.products[0].Stock = 2, -1 }, "stock -1 is below zero"},
		{"pending order", func(b *books) { b.orders["b@x"][0].Status = "pending" }, "order o3 of b@x: still pending"},
		{"two orders for one key", func(b *books) { b.keys["k1"] = append(b.keys["k1"], "o9") }, "Idempotency-Key k1: answered with 2 orders: o1, o9"},
		{"an order no answer named", func(b *books) {
			b.orders["b@x"] = append(b.orders["b@x"], ord("o4", "rejected", 100, "p1", 1))
		}, "customer b@x: 1 orders that no answer named, but only 0 placements went unanswered"},
		{"captured for no order", func(b *books) {
			b.charges = append(b.charges, charge{ID: "ch9", Reference: "o_gone", AmountCents: 5, Status: "captured"})
		}, "payment ch9: captured 5 cents for o_gone, which is no order of the run"},
		{"captured for a cancelled order", func(b *books) { b.charges[1].Status = "captured" }, "payment ch2: captured 200 cents for order o2, which is cancelled"},
		{"captured another amount", func(b *books) { b.charges[0].AmountCents = 301 }, "payment ch1: captured 301 cents for order o1 of 300 cents"},
		{"total not at the products' prices", func(b *books) {
			b.orders["a@x"][0].TotalCents, b.charges[0].AmountCents = 30, 30
		}, "order o1 of a@x: total 30 cents, but its items at the products' prices make 300"},
		{"confirmed without payment", func(b *books) { b.charges = b.charges[1:] }, "order o1: confirmed without a payment"},
		{"refunded for a confirmed order", func(b *books) { b.charges[0].Status = "refunded" }, "payment ch1: refunded, but its order o1 is confirmed"},
		{"list at its limit", func(b *books) {
			for range listLimit {
				b.orders["b@x"] = append(b.orders["b@x"], ord("o3", "rejected", 100, "p1", 1))
			}
		}, "customer b@x: 101 orders listed, the list's limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := balanced()
			tc.spoil(b)
			v := b.Check()
			found := false
			for _, line := range v {
				found = found || strings.Contains(line, tc.want)
			}
			if !found {
				t.Fatalf("violations = %q, want one with %q", v, tc.want)
			}
		})
	}
}
