package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/auth"
)

// BenchmarkVerify measures one verification on the fast path (key known and
// cached). Compare with BenchmarkGolangJWT: the difference is this package's
// own cost.
func BenchmarkVerify(b *testing.B) {
	k := keys()
	v := newVerifier(b, []auth.Issuer{staticIssuer()})
	for _, bc := range []struct {
		name string
		tok  string
	}{
		{"EdDSA", sign(b, jwt.SigningMethodEdDSA, k.ed, "ed", claims(nil), nil)},
		{"RS256", sign(b, jwt.SigningMethodRS256, k.rsa, "rs", claims(nil), nil)},
		{"HS256", sign(b, jwt.SigningMethodHS256, k.hs, "hs", claims(nil), nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, bc.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGolangJWT is golang-jwt alone on the same tokens, for comparison.
func BenchmarkGolangJWT(b *testing.B) {
	k := keys()
	p := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA", "RS256"}), jwt.WithTimeFunc(fixedClock),
		jwt.WithAudience(testAudience), jwt.WithIssuer(testIssuer), jwt.WithExpirationRequired())
	for _, bc := range []struct {
		name string
		tok  string
		key  any
	}{
		{"EdDSA", sign(b, jwt.SigningMethodEdDSA, k.ed, "ed", claims(nil), nil), k.ed.Public()},
		{"RS256", sign(b, jwt.SigningMethodRS256, k.rsa, "rs", claims(nil), nil), &k.rsa.PublicKey},
	} {
		b.Run(bc.name, func(b *testing.B) {
			keyfunc := func(*jwt.Token) (any, error) { return bc.key, nil }
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Parse(bc.tok, keyfunc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequire is the middleware around an empty handler.
func BenchmarkRequire(b *testing.B) {
	v := newVerifier(b, []auth.Issuer{staticIssuer()})
	h := auth.Require(v, auth.WithScopes(auth.AnyScope("orders:read")))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+signEd(b, claims(nil)))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
	if w.Code != http.StatusOK {
		b.Fatal(w.Code)
	}
}
