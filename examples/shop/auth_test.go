package shop

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/examples/shop/users"
)

// TestForgedTokensAreRefused: tokens with a forged signature, another issuer,
// another audience, no signature or a past expiry are 401 at the gateway and
// at every service called directly, so reaching a service past the gateway
// does not let anyone act as someone else.
func TestForgedTokensAreRefused(t *testing.T) {
	ts := startShop(t, t.TempDir())
	alice := ts.api("GET", "/api/users/me", ts.login(AliceEmail, AlicePassword), nil).str("id")
	key, err := users.LoadOrCreateKey(ts.dir)
	if err != nil {
		t.Fatal(err)
	}
	kid := users.KeyID(key.Public().(ed25519.PublicKey))
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "shop-users", "aud": "shop", "sub": alice, "scope": "admin",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	sign := func(k ed25519.PrivateKey, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	unsigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{
		"forged signature": sign(otherKey, claims(nil)),
		"another issuer":   sign(key, claims(func(c jwt.MapClaims) { c["iss"] = "evil-users" })),
		"another audience": sign(key, claims(func(c jwt.MapClaims) { c["aud"] = "not-the-shop" })),
		"expired":          sign(key, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
		"alg none":         unsigned,
	}
	// The genuine key with the genuine claims passes: the refusals are the claims'.
	if a := ts.api("GET", "/api/users/me", sign(key, claims(nil)), nil); a.status != http.StatusOK {
		t.Fatalf("a genuine token: %d %s", a.status, a.raw)
	}
	product := map[string]any{"name": "Forged", "price_cents": 1, "stock": 1}
	order := orderBody(cardOK, line{"p_x", 1})
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				method, url string
				body        any
			}{
				{"GET", ts.base + "/api/users/me", nil},
				{"GET", ts.base + "/api/orders", nil},
				{"POST", ts.base + "/api/orders", order},
				{"POST", ts.base + "/api/products", product},
				{"GET", ts.serviceURL(Users) + "/users/me", nil},
				{"GET", ts.serviceURL(Users) + "/users/" + alice, nil},
				{"GET", ts.serviceURL(Orders) + "/orders", nil},
				{"POST", ts.serviceURL(Orders) + "/orders", order},
				{"POST", ts.serviceURL(Products) + "/products", product},
				{"POST", ts.serviceURL(Products) + "/reservations", map[string]any{"id": "r", "product_id": "p_x", "quantity": 1}},
				{"POST", ts.serviceURL(Payments) + "/refunds", map[string]any{"reference": "o_x"}},
			} {
				if a := ts.do(c.method, c.url, tok, c.body); a.status != http.StatusUnauthorized {
					t.Errorf("%s %s: %d, want 401; %s", c.method, c.url, a.status, a.raw)
				}
			}
		})
	}
}

// TestUserCannotReadAnotherUser: GET /users/{id} of someone else is 404.
func TestUserCannotReadAnotherUser(t *testing.T) {
	ts := startShop(t, t.TempDir())
	alice := ts.login(AliceEmail, AlicePassword)
	bobID := ts.api("GET", "/api/users/me", ts.login(BobEmail, BobPassword), nil).str("id")
	ts.want(ts.api("GET", "/api/users/"+bobID, alice, nil), http.StatusNotFound, "Alice reads Bob")
	admin := ts.login(AdminEmail, "admin-password")
	ts.want(ts.api("GET", "/api/users/"+bobID, admin, nil), http.StatusOK, "the admin reads Bob")
}

// TestUserTokensCannotCallInternalRoutes: a user's genuine token, even the
// admin's, is refused (403) at the routes only the orders service may call,
// so a user who reaches products or payments directly cannot reserve stock,
// charge or refund.
func TestUserTokensCannotCallInternalRoutes(t *testing.T) {
	ts := startShop(t, t.TempDir())
	for _, tok := range []string{ts.login(AliceEmail, AlicePassword), ts.login(AdminEmail, "admin-password")} {
		for _, c := range []struct {
			method, url string
			body        any
		}{
			{"POST", ts.serviceURL(Products) + "/reservations", map[string]any{"id": "r", "product_id": "p_x", "quantity": 1}},
			{"DELETE", ts.serviceURL(Products) + "/reservations/r", nil},
			{"POST", ts.serviceURL(Payments) + "/charges", map[string]any{"reference": "o_x", "amount_cents": 1, "card_number": cardOK}},
			{"POST", ts.serviceURL(Payments) + "/refunds", map[string]any{"reference": "o_x"}},
			{"GET", ts.serviceURL(Payments) + "/charges/ch_x", nil},
		} {
			if a := ts.do(c.method, c.url, tok, c.body); a.status != http.StatusForbidden {
				t.Errorf("%s %s with a user's token: %d, want 403; %s", c.method, c.url, a.status, a.raw)
			}
		}
	}
	// Nor are the internal routes reachable through the gateway.
	ts.want(ts.api("POST", "/api/reservations", "", nil), http.StatusNotFound, "reservations through the gateway")
	ts.want(ts.api("POST", "/api/oauth/token", "", nil), http.StatusNotFound, "the token endpoint through the gateway")
}

// TestServiceTokenNeedsTheSecret: the client credentials grant refuses a
// wrong secret and an unknown client.
func TestServiceTokenNeedsTheSecret(t *testing.T) {
	ts := startShop(t, t.TempDir())
	post := func(id, secret string) int {
		req, err := http.NewRequest("POST", ts.serviceURL(Users)+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := ts.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(Orders, ts.ordersSecret); got != http.StatusOK {
		t.Fatalf("the right secret: %d", got)
	}
	if got := post(Orders, ts.ordersSecret+"x"); got != http.StatusUnauthorized {
		t.Fatalf("a wrong secret: %d, want 401", got)
	}
	if got := post("mallory", ts.ordersSecret); got != http.StatusUnauthorized {
		t.Fatalf("an unknown client: %d, want 401", got)
	}
}

// TestPasswordGuessingIsRateLimited: log-in attempts from one address past
// the gateway's budget are 429 before any password is checked.
func TestPasswordGuessingIsRateLimited(t *testing.T) {
	ts := startShop(t, t.TempDir(), func(c *Config) { c.LoginRate, c.LoginBurst = 0.001, 3 })
	guess := map[string]string{"email": AliceEmail, "password": "guess-number-n"}
	for i := range 3 {
		ts.want(ts.api("POST", "/api/login", "", guess), http.StatusUnauthorized, "guess "+string(rune('1'+i)))
	}
	res := ts.api("POST", "/api/login", "", map[string]string{"email": AliceEmail, "password": AlicePassword})
	ts.want(res, http.StatusTooManyRequests, "the right password past the budget")
	if res.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
