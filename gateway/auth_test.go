package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pier-go/pier/auth"
	"github.com/pier-go/pier/gateway"
	"github.com/pier-go/pier/internal/metrictest"
)

// issuer signs tokens that its verifier accepts.
type issuer struct {
	key ed25519.PrivateKey
	v   *auth.Verifier
}

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier([]auth.Issuer{{Issuer: "https://users.example", Audiences: []string{"shop"},
		Algorithms: []string{"EdDSA"}, Keys: []auth.Key{{ID: "k1", Algorithm: "EdDSA", Key: pub}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return &issuer{key: priv, v: v}
}

// token returns a bearer token for sub with scopes, valid for an hour.
func (is *issuer) token(t testing.TB, sub string, scopes ...string) string {
	t.Helper()
	return is.sign(t, jwt.MapClaims{"iss": "https://users.example", "aud": "shop", "sub": sub,
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "scope": strings.Join(scopes, " ")})
}

func (is *issuer) sign(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authRoutes() []gateway.Route {
	return []gateway.Route{
		open("public", "/api/public", "public"),
		{Name: "admin", Prefix: "/api/admin", Service: "admin", Scopes: []string{"admin"}},
		{Name: "orders", Prefix: "/api/orders", Service: "orders"},
		{Name: "any", Prefix: "/api/any", Service: "orders", Scopes: []string{"orders:read", "orders:write"}},
		{Name: "all", Prefix: "/api/all", Service: "orders", Scopes: []string{"orders:read", "orders:write"}, AllScopes: true},
		{Name: "ws", Prefix: "/ws", Service: "ws", WebSocket: true},
	}
}

func TestAuthModes(t *testing.T) {
	is := newIssuer(t)
	e := newEnv(t, authRoutes(), gateway.WithVerifier(is.v))
	other := newIssuer(t) // same claims, a key the gateway does not know
	expired := is.sign(t, jwt.MapClaims{"iss": "https://users.example", "aud": "shop", "sub": "u1",
		"exp": time.Now().Add(-time.Hour).Unix()})
	cases := []struct {
		name, path, token string
		status            int
		challenge         string
	}{
		{"open route needs nothing", "/api/public/x", "", 200, ""},
		{"token route without token", "/api/orders/1", "", 401, `Bearer realm="pier"`},
		{"token route with token", "/api/orders/1", is.token(t, "u1"), 200, ""},
		{"forged signature", "/api/orders/1", other.token(t, "u1"), 401, `error="invalid_token"`},
		{"expired", "/api/orders/1", expired, 401, `error="invalid_token"`},
		{"garbage", "/api/orders/1", "not.a.jwt", 401, `error="invalid_token"`},
		{"scope missing", "/api/admin/x", is.token(t, "u1", "orders:read"), 403, `error="insufficient_scope", scope="admin"`},
		{"scope held", "/api/admin/x", is.token(t, "u1", "admin"), 200, ""},
		{"any-of, one held", "/api/any/x", is.token(t, "u1", "orders:write"), 200, ""},
		{"any-of, none held", "/api/any/x", is.token(t, "u1", "admin"), 403, "insufficient_scope"},
		{"all-of, one held", "/api/all/x", is.token(t, "u1", "orders:read"), 403, "insufficient_scope"},
		{"all-of, both held", "/api/all/x", is.token(t, "u1", "orders:write", "orders:read"), 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h []string
			if c.token != "" {
				h = append(h, "Authorization: Bearer "+c.token)
			}
			resp, body := e.get(t, c.path, h...)
			if c.status != 200 {
				wantProblem(t, resp, body, c.status)
				if g := resp.Header.Get("WWW-Authenticate"); !strings.Contains(g, c.challenge) {
					t.Fatalf("WWW-Authenticate %q, want it to hold %q", g, c.challenge)
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	// The verified token goes on to the upstream, which verifies it again
	// (auth.Require with the same verifier) and so sees its subject and
	// scopes.
	seen := make(chan *auth.Claims, 1)
	e.up["admin"].set(auth.Require(is.v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := auth.FromContext(r.Context())
		seen <- c
	})).ServeHTTP)
	tok := is.token(t, "u7", "admin", "orders:read")
	if resp, body := e.get(t, "/api/admin/x", "Authorization: Bearer "+tok); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if g := e.up["admin"].last(t).Header.Get("Authorization"); g != "Bearer "+tok {
		t.Fatalf("upstream Authorization %q", g)
	}
	select {
	case c := <-seen:
		if c == nil || c.Subject != "u7" || !slices.Equal(c.Scopes, []string{"admin", "orders:read"}) {
			t.Fatalf("the upstream saw claims %+v, want subject u7 with scopes admin, orders:read", c)
		}
	default:
		t.Fatal("the upstream's handler did not run")
	}
}

// TestPathConfusionUnderAuth runs the path table with the admin route
// needing a token with scope admin: every request that lands on admin lands
// there under its auth, and no path trick reaches it through the open route.
func TestPathConfusionUnderAuth(t *testing.T) {
	is := newIssuer(t)
	e := newEnv(t, append(pathRoutes()[:1],
		gateway.Route{Name: "admin", Prefix: "/api/admin", Service: "admin", Scopes: []string{"admin"}},
		pathRoutes()[2], pathRoutes()[3]), gateway.WithVerifier(is.v))
	for _, c := range pathTable {
		t.Run(c.name, func(t *testing.T) {
			resp, body := e.raw(t, "GET", c.target, "Authorization: Bearer "+is.token(t, "u1", "orders:read"))
			switch {
			case c.status != 0:
				if resp.StatusCode != c.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
				}
			case c.service == "admin":
				wantProblem(t, resp, body, http.StatusForbidden)
			case resp.StatusCode != http.StatusOK:
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	if n := len(e.up["admin"].requests()); n != 0 {
		t.Fatalf("admin got %d requests without the admin scope", n)
	}
}

// TestAuthBypassViaQuery_CVE2025_54576: oauth2-proxy CVE-2025-54576 matched
// its auth exemptions against the query too, so /admin?x=/public skipped
// auth. The gateway decides auth on the canonical path alone.
func TestAuthBypassViaQuery_CVE2025_54576(t *testing.T) {
	is := newIssuer(t)
	e := newEnv(t, authRoutes(), gateway.WithVerifier(is.v))
	for _, target := range []string{"/api/orders/1?next=/api/public", "/api/orders?/api/public/x",
		"/api/orders/1?a=b&redirect=%2Fapi%2Fpublic"} {
		resp, body := e.raw(t, "GET", target)
		wantProblem(t, resp, body, http.StatusUnauthorized)
	}
	if n := len(e.up["orders"].requests()); n != 0 {
		t.Fatalf("orders got %d requests without a token", n)
	}
}

// TestBadTokenFloodPreAuthLimit: once an address has sent its burst of
// bad tokens, its further tokens are not verified at all (429, and no new
// auth failure is counted), while other addresses and valid tokens from
// elsewhere are unaffected.
func TestBadTokenFloodPreAuthLimit(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	clock := newFakeClock()
	is := newIssuer(t)
	e := newEnv(t, authRoutes(), gateway.WithVerifier(is.v), gateway.WithPreAuthLimit(1, 5),
		gateway.WithClock(clock.Now), gateway.WithMeterProvider(mp))
	bad := "Bearer " + newIssuer(t).token(t, "attacker")
	good := "Bearer " + is.token(t, "u1")
	for i := range 5 {
		if w := serve(e.gw, "GET", "/api/orders/1", "198.51.100.7:1", "Authorization", bad); w.Code != 401 {
			t.Fatalf("bad token %d: status %d", i, w.Code)
		}
	}
	w := serve(e.gw, "GET", "/api/orders/1", "198.51.100.7:1", "Authorization", bad)
	wantProblem(t, w.Result(), w.Body.String(), http.StatusTooManyRequests)
	if w.Header().Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	fails, _ := metrictest.Value(t, reader, "pier.gateway.auth.failures",
		attribute.String("pier.gateway.route", "orders"), attribute.String("reason", "unknown_key"))
	fails2, _ := metrictest.Value(t, reader, "pier.gateway.auth.failures",
		attribute.String("pier.gateway.route", "orders"), attribute.String("reason", "signature"))
	if fails+fails2 != 5 {
		t.Fatalf("%v auth failures counted, want 5: the sixth token must not be verified", fails+fails2)
	}
	limited, _ := metrictest.Value(t, reader, "pier.gateway.rate_limited",
		attribute.String("pier.gateway.route", "orders"), attribute.String("limit", "pre_auth"))
	if limited != 1 {
		t.Fatalf("pre_auth rate_limited = %v", limited)
	}
	if w := serve(e.gw, "GET", "/api/orders/1", "198.51.100.8:1", "Authorization", good); w.Code != 200 {
		t.Fatalf("another address: status %d", w.Code)
	}
	for range 20 { // valid tokens cost nothing from the budget
		if w := serve(e.gw, "GET", "/api/orders/1", "198.51.100.9:1", "Authorization", good); w.Code != 200 {
			t.Fatalf("valid token: status %d", w.Code)
		}
	}
	clock.Add(time.Second)
	if w := serve(e.gw, "GET", "/api/orders/1", "198.51.100.7:1", "Authorization", good); w.Code != 200 {
		t.Fatalf("after refill: status %d", w.Code)
	}
}

// TestRateLimitBySubject: on an authenticated route the bucket is the
// token's subject: two users behind one address do not share it, and one
// user cannot dodge it by changing address.
func TestRateLimitBySubject(t *testing.T) {
	clock := newFakeClock()
	is := newIssuer(t)
	e := newEnv(t, []gateway.Route{{Name: "orders", Prefix: "/orders", Service: "orders",
		RateLimit: &gateway.RateLimit{Rate: 1, Burst: 1}}}, gateway.WithVerifier(is.v), gateway.WithClock(clock.Now))
	alice, bob := "Bearer "+is.token(t, "alice"), "Bearer "+is.token(t, "bob")
	for i, s := range []struct {
		remote, token string
		want          int
	}{
		{"192.0.2.1:1", alice, 200}, {"192.0.2.1:1", bob, 200}, {"192.0.2.2:1", alice, 429}, {"192.0.2.3:1", bob, 429},
	} {
		if w := serve(e.gw, "GET", "/orders/1", s.remote, "Authorization", s.token); w.Code != s.want {
			t.Fatalf("step %d: status %d, want %d", i, w.Code, s.want)
		}
	}
}

// TestWebSocketAfterAuth: a handshake on a WebSocket route needs the
// route's token like any request.
func TestWebSocketAfterAuth(t *testing.T) {
	is := newIssuer(t)
	e := newEnv(t, authRoutes(), gateway.WithVerifier(is.v))
	e.up["ws"].set(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.front.URL, "http") + "/ws/x"
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("upgraded without a token")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("response %v", resp)
	}
	if n := len(e.up["ws"].requests()); n != 0 {
		t.Fatalf("upstream got %d handshakes without a token", n)
	}
	c, _, err = websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + is.token(t, "u1")}}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = c.Read(ctx) // the upstream closes
	c.CloseNow()
}

// TestTokenCacheKeepsEveryCheck: a token the gateway has verified and cached
// is still refused once expired, still needs each route's scopes, and a
// second Authorization header beside it is still refused.
func TestTokenCacheKeepsEveryCheck(t *testing.T) {
	clock := newFakeClock()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier([]auth.Issuer{{Issuer: "https://users.example", Audiences: []string{"shop"},
		Algorithms: []string{"EdDSA"}, Keys: []auth.Key{{ID: "k1", Algorithm: "EdDSA", Key: pub}}}},
		auth.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	is := &issuer{key: priv, v: v}
	e := newEnv(t, authRoutes(), gateway.WithVerifier(v), gateway.WithClock(clock.Now),
		gateway.WithTokenCache(time.Hour, 100))
	tok := "Bearer " + is.sign(t, jwt.MapClaims{"iss": "https://users.example", "aud": "shop", "sub": "u1",
		"exp": clock.Now().Add(time.Minute).Unix(), "scope": "orders:read"})
	for range 3 {
		if w := serve(e.gw, "GET", "/api/orders/1", "192.0.2.1:1", "Authorization", tok); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if w := serve(e.gw, "GET", "/api/admin/1", "192.0.2.1:1", "Authorization", tok); w.Code != http.StatusForbidden {
		t.Fatalf("cached token on a route needing another scope: status %d", w.Code)
	}
	r := httptest.NewRequest("GET", "/api/orders/1", nil)
	r.Header["Authorization"] = []string{tok, "Bearer other"}
	w := httptest.NewRecorder()
	e.gw.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("a cached token beside a second Authorization header: status %d", w.Code)
	}
	clock.Add(2 * time.Minute)
	if w := serve(e.gw, "GET", "/api/orders/1", "192.0.2.1:1", "Authorization", tok); w.Code != http.StatusUnauthorized {
		t.Fatalf("expired cached token: status %d", w.Code)
	}
}
