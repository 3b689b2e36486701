package shop

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestChargesListedForAnAdminOnly: the payments service lists the charges
// made since a time, paged, to an admin; anyone else gets 401 or 403.
func TestChargesListedForAnAdminOnly(t *testing.T) {
	ts := startShop(t, t.TempDir())
	start := time.Now().Add(-time.Second)
	cup := ts.product("cup", 250, 10)
	alice := ts.login(AliceEmail, AlicePassword)
	placed := map[string]string{} // order id -> want charge status
	for _, card := range []string{cardOK, cardOK, cardDeclined} {
		a := ts.api("POST", "/api/orders", alice, orderBody(card, line{cup, 1}))
		switch card {
		case cardOK:
			ts.want(a, http.StatusCreated, "order")
			placed[a.str("id")] = "captured"
		default:
			ts.want(a, http.StatusPaymentRequired, "declined order")
			placed[a.str("order_id")] = "declined"
		}
	}
	admin := ts.login(AdminEmail, "admin-password")
	base := ts.serviceURL(Payments) + "/charges?since=" + url.QueryEscape(start.Format(time.RFC3339Nano))

	ts.want(ts.do("GET", base, "", nil), http.StatusUnauthorized, "list without a token")
	ts.want(ts.do("GET", base, alice, nil), http.StatusForbidden, "list as a customer")
	ts.want(ts.do("GET", base+"&limit=0", admin, nil), http.StatusBadRequest, "limit 0")
	ts.want(ts.do("GET", base+"&cursor=%21", admin, nil), http.StatusBadRequest, "bad cursor")

	// One charge a page: three pages, each cursor leading to the next.
	got := map[string]string{}
	next, pages := "", 0
	for pages = 1; pages <= 10; pages++ {
		u := base + "&limit=1"
		if next != "" {
			u += "&cursor=" + url.QueryEscape(next)
		}
		a := ts.do("GET", u, admin, nil)
		ts.want(a, http.StatusOK, "list charges")
		list, _ := a.body["charges"].([]any)
		for _, c := range list {
			c := c.(map[string]any)
			got[c["reference"].(string)] = c["status"].(string)
		}
		if next = a.str("next_cursor"); next == "" {
			break
		}
	}
	if pages != 3 || len(got) != 3 {
		t.Fatalf("listed %d charges in %d pages, want 3 in 3: %v", len(got), pages, got)
	}
	for id, want := range placed {
		if got[id] != want {
			t.Errorf("charge of order %s is %q, want %q", id, got[id], want)
		}
	}

	// Charges made before since are left out.
	later := ts.serviceURL(Payments) + "/charges?since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339Nano))
	a := ts.do("GET", later, admin, nil)
	ts.want(a, http.StatusOK, "list charges since an hour ahead")
	if list, _ := a.body["charges"].([]any); len(list) != 0 {
		t.Errorf("charges since an hour ahead = %v, want none", list)
	}
}
