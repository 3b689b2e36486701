package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/auth"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "api"
)

// t0 is the fixed "now" of every test verifier.
var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	ed     ed25519.PrivateKey
	ed2    ed25519.PrivateKey // another issuer's key
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	hs     []byte
	rsaPEM []byte // the RSA public key as PEM, as an attacker would find it
}

var keys = sync.OnceValue(func() *testKeys {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	seed2 := make([]byte, ed25519.SeedSize)
	for i := range seed2 {
		seed2[i] = byte(100 + i)
	}
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKeys{
		ed:     ed25519.NewKeyFromSeed(seed),
		ed2:    ed25519.NewKeyFromSeed(seed2),
		rsa:    r,
		ec:     ec,
		hs:     []byte("0123456789abcdef0123456789abcdef"),
		rsaPEM: pemPublic(&r.PublicKey),
	}
})

// staticIssuer trusts four keys, each bound to its algorithm.
func staticIssuer() auth.Issuer {
	k := keys()
	return auth.Issuer{
		Issuer:     testIssuer,
		Audiences:  []string{testAudience, "api2"},
		Algorithms: []string{"EdDSA", "RS256", "ES256", "HS256"},
		Keys: []auth.Key{
			{ID: "ed", Algorithm: "EdDSA", Key: k.ed.Public()},
			{ID: "rs", Algorithm: "RS256", Key: &k.rsa.PublicKey},
			{ID: "es", Algorithm: "ES256", Key: &k.ec.PublicKey},
			{ID: "hs", Algorithm: "HS256", Key: k.hs},
		},
	}
}

func newVerifier(tb testing.TB, issuers []auth.Issuer, opts ...auth.Option) *auth.Verifier {
	tb.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := auth.NewVerifier(issuers, append([]auth.Option{auth.WithClock(fixedClock), auth.WithLogger(logger)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = v.Close() })
	return v
}

// testWriter sends a Verifier's log lines to the test's log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// claims returns valid claims for testIssuer, changed by the edits: a nil value
// deletes the claim.
func claims(edits map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss":   testIssuer,
		"aud":   testAudience,
		"sub":   "user-42",
		"exp":   t0.Add(time.Hour).Unix(),
		"iat":   t0.Add(-time.Minute).Unix(),
		"scope": "orders:read profile",
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs c with method and key, with kid (if not empty) and extra header
// parameters.
func sign(tb testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims, header map[string]any) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	maps.Copy(tok.Header, header)
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func signEd(tb testing.TB, c jwt.MapClaims) string {
	return sign(tb, jwt.SigningMethodEdDSA, keys().ed, "ed", c, nil)
}

// rawToken joins a header and claims, unsigned, with sig as the signature.
func rawToken(tb testing.TB, header map[string]any, c jwt.MapClaims, sig string) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + sig
}

// reasonOf returns the Reason of an *auth.Error in err's chain, or "".
func reasonOf(err error) auth.Reason {
	if e, ok := errors.AsType[*auth.Error](err); ok {
		return e.Reason
	}
	return ""
}

func pemPublic(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
