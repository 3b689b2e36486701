package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/auth"
)

// exampleToken signs a token as the issuer in the examples would.
func exampleToken(secret []byte, exp time.Time) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss":   "https://users.example",
		"aud":   "shop",
		"sub":   "user-42",
		"scope": "orders:read profile",
		"exp":   exp.Unix(),
	})
	tok.Header["kid"] = "2026-12"
	s, _ := tok.SignedString(secret)
	return s
}

func ExampleNewVerifier() {
	secret := []byte("an example secret, 32 bytes long")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v, err := auth.NewVerifier([]auth.Issuer{{
		Issuer:     "https://users.example",
		Audiences:  []string{"shop"},
		Algorithms: []string{"HS256"},
		Keys:       []auth.Key{{ID: "2026-12", Algorithm: "HS256", Key: secret}},
	}}, auth.WithClock(func() time.Time { return now }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()

	c, err := v.Verify(context.Background(), exampleToken(secret, now.Add(time.Hour)))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Subject, c.Scopes, c.HasScope("orders:read"))

	_, err = v.Verify(context.Background(), exampleToken(secret, now.Add(-time.Minute)))
	if e, ok := err.(*auth.Error); ok {
		fmt.Println("refused:", e.Reason)
	}
	// Output:
	// user-42 [orders:read profile] true
	// refused: expired
}

func ExampleRequire() {
	secret := []byte("an example secret, 32 bytes long")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v, err := auth.NewVerifier([]auth.Issuer{{
		Issuer:     "https://users.example",
		Audiences:  []string{"shop"},
		Algorithms: []string{"HS256"},
		Keys:       []auth.Key{{ID: "2026-12", Algorithm: "HS256", Key: secret}},
	}}, auth.WithClock(func() time.Time { return now }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()

	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := auth.FromContext(r.Context())
		fmt.Fprintf(w, "orders of %s", c.Subject)
	})
	h := auth.Require(v, auth.WithScopes(auth.AnyScope("orders:read")))(orders)

	for _, header := range []string{"", "Bearer not-a-token", "Bearer " + exampleToken(secret, now.Add(time.Hour))} {
		req := httptest.NewRequest("GET", "/orders", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Header().Get("Content-Type"))
		if rec.Code == http.StatusOK {
			fmt.Println(rec.Body)
		}
	}
	// Output:
	// 401 Bearer application/problem+json
	// 401 Bearer error="invalid_token" application/problem+json
	// 200  text/plain; charset=utf-8
	// orders of user-42
}

// A handler behind Require reads the verified claims from its request's
// context; code that verifies tokens itself puts them there with NewContext.
func ExampleFromContext() {
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := auth.FromContext(r.Context())
		if !ok {
			http.Error(w, "no caller", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s with %v", c.Subject, c.Scopes)
	})
	req := httptest.NewRequest("GET", "/me", nil)
	ctx := auth.NewContext(req.Context(), &auth.Claims{Subject: "user-42", Scopes: []string{"admin"}})
	rec := httptest.NewRecorder()
	whoami.ServeHTTP(rec, req.WithContext(ctx))
	fmt.Println(rec.Body)

	rec = httptest.NewRecorder()
	whoami.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body)
	// Output:
	// user-42 with [admin]
	// 401 no caller
}

// A scope rule asks for any or all of its scopes; Check tells a token that
// grants them from one that does not, and Err tells an invalid rule at once.
func ExampleAnyScope() {
	claims := &auth.Claims{Subject: "user-42", Scopes: []string{"orders:read", "profile"}}
	for _, rule := range []auth.ScopeRule{
		auth.AnyScope("orders:read", "orders:write"),
		auth.AllScopes("orders:read", "orders:write"),
	} {
		fmt.Printf("%v: %v\n", rule, auth.Check(claims, rule))
	}
	fmt.Println(auth.AnyScope("café").Err())
	// Output:
	// any of orders:read orders:write: <nil>
	// all of orders:read orders:write: auth: scope: token grants ["orders:read" "profile"], rule wants all of orders:read orders:write
	// auth: scope rule: "café" is not a scope token
}
