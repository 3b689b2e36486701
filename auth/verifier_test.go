package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/auth"
)

func TestNewVerifierRefusesBadConfig(t *testing.T) {
	k := keys()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ok := staticIssuer
	edit := func(f func(*auth.Issuer)) []auth.Issuer {
		in := ok()
		f(&in)
		return []auth.Issuer{in}
	}
	tests := []struct {
		name    string
		issuers []auth.Issuer
		opts    []auth.Option
		want    string // in the error
	}{
		{name: "no issuers", want: "no issuers"},
		{name: "empty Issuer", issuers: edit(func(in *auth.Issuer) { in.Issuer = "" }), want: "empty Issuer"},
		{name: "issuer twice", issuers: []auth.Issuer{ok(), ok()}, want: "given twice"},
		{name: "no audiences", issuers: edit(func(in *auth.Issuer) { in.Audiences = nil }), want: "no Audiences"},
		{name: "empty audience", issuers: edit(func(in *auth.Issuer) { in.Audiences = []string{""} }), want: "empty audience"},
		{name: "no algorithms", issuers: edit(func(in *auth.Issuer) { in.Algorithms = nil }), want: "no Algorithms"},
		{name: "alg none allowed", issuers: edit(func(in *auth.Issuer) { in.Algorithms = append(in.Algorithms, "none") }), want: `"none" is not supported`},
		{name: "alg None allowed", issuers: edit(func(in *auth.Issuer) { in.Algorithms = append(in.Algorithms, "None") }), want: "not supported"},
		{name: "lowercase alg", issuers: edit(func(in *auth.Issuer) { in.Algorithms = []string{"rs256"} }), want: "not supported"},
		{name: "leeway over 60 s", issuers: edit(func(in *auth.Issuer) { in.Leeway = 61 * time.Second }), want: "leeway"},
		{name: "negative leeway", issuers: edit(func(in *auth.Issuer) { in.Leeway = -time.Second }), want: "leeway"},
		{name: "keys and JWKS", issuers: edit(func(in *auth.Issuer) { in.JWKSURL = "https://issuer.test/jwks" }), want: "both"},
		{name: "neither keys nor JWKS", issuers: edit(func(in *auth.Issuer) { in.Keys = nil }), want: "neither"},
		{name: "HMAC with JWKS", issuers: edit(func(in *auth.Issuer) { in.Keys = nil; in.JWKSURL = "https://issuer.test/jwks" }), want: "shared secret"},
		{name: "JWKS URL not absolute", issuers: edit(func(in *auth.Issuer) {
			in.Keys, in.Algorithms, in.JWKSURL = nil, []string{"EdDSA"}, "/jwks.json"
		}), want: "JWKSURL"},
		{name: "JWKS URL of another scheme", issuers: edit(func(in *auth.Issuer) {
			in.Keys, in.Algorithms, in.JWKSURL = nil, []string{"EdDSA"}, "file:///etc/jwks.json"
		}), want: "JWKSURL"},
		{name: "key algorithm not allowed", issuers: edit(func(in *auth.Issuer) { in.Algorithms = []string{"EdDSA"}; in.Keys = in.Keys[:2] }), want: "not in Algorithms"},
		{name: "RSA key as HMAC secret", issuers: edit(func(in *auth.Issuer) { in.Keys[3].Key = &k.rsa.PublicKey }), want: "[]byte secret"},
		{name: "short HMAC secret", issuers: edit(func(in *auth.Issuer) { in.Keys[3].Key = []byte("short") }), want: "at least 32"},
		{name: "PEM bytes as RSA key", issuers: edit(func(in *auth.Issuer) { in.Keys[1].Key = k.rsaPEM }), want: "*rsa.PublicKey"},
		{name: "1024-bit RSA key", issuers: edit(func(in *auth.Issuer) { in.Keys[1].Key = &weakRSA.PublicKey }), want: "at least 2048"},
		{name: "ES256 key on P-384", issuers: edit(func(in *auth.Issuer) { in.Keys[2].Key = &p384.PublicKey }), want: "P-256"},
		{name: "EdDSA key of another type", issuers: edit(func(in *auth.Issuer) { in.Keys[0].Key = &k.ec.PublicKey }), want: "ed25519"},
		{name: "nil key", issuers: edit(func(in *auth.Issuer) { in.Keys[0].Key = nil }), want: "ed25519"},
		{name: "key ID twice", issuers: edit(func(in *auth.Issuer) { in.Keys[1].ID = "ed" }), want: "given twice"},
		{name: "nil option", issuers: []auth.Issuer{ok()}, opts: []auth.Option{nil}, want: "nil option"},
		{name: "nil client", issuers: []auth.Issuer{ok()}, opts: []auth.Option{auth.WithHTTPClient(nil)}, want: "nil HTTP client"},
		{name: "nil clock", issuers: []auth.Issuer{ok()}, opts: []auth.Option{auth.WithClock(nil)}, want: "nil clock"},
		{name: "negative refresh", issuers: []auth.Issuer{ok()}, opts: []auth.Option{auth.WithRefresh(-1)}, want: "refresh"},
		{name: "negative unknown-kid interval", issuers: []auth.Issuer{ok()}, opts: []auth.Option{auth.WithUnknownKidInterval(-1)}, want: "unknown-kid"},
		{name: "negative fetch timeout", issuers: []auth.Issuer{ok()}, opts: []auth.Option{auth.WithFetchTimeout(-1)}, want: "fetch timeout"},
		{name: "negative JWKS size", issuers: []auth.Issuer{ok()}, opts: []auth.Option{auth.WithMaxJWKSSize(-1)}, want: "JWKS size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := auth.NewVerifier(tt.issuers, tt.opts...)
			if err == nil {
				_ = v.Close()
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "auth: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to hold %q", err, tt.want)
			}
		})
	}
}

func TestNewVerifierAcceptsPrivateKeysKeepingThePublicHalf(t *testing.T) {
	k := keys()
	in := staticIssuer()
	in.Keys[0].Key = k.ed
	in.Keys[1].Key = k.rsa
	v := newVerifier(t, []auth.Issuer{in})
	for _, tok := range []string{signEd(t, claims(nil)), sign(t, jwt.SigningMethodRS256, k.rsa, "rs", claims(nil), nil)} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Error(err)
		}
	}
}

// TestVerifyHugeTokenOfDotsBoundedAllocations is golang-jwt CVE-2025-30204: a
// token of many dots made the parser allocate in proportion to its length. The
// Verifier refuses it by length with a constant, small number of allocations.
func TestVerifyHugeTokenOfDotsBoundedAllocations(t *testing.T) {
	v := newVerifier(t, []auth.Issuer{staticIssuer()})
	dots := strings.Repeat(".", 1<<20)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(ctx, dots); reasonOf(err) != auth.ReasonTooLarge {
			t.Fatalf("err %v", err)
		}
	})
	if allocs > 6 {
		t.Errorf("Verify of a 1 MB token of dots: %v allocations, want at most 6", allocs)
	}
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = v.Verify(ctx, dots)
		}
	})
	if n := res.AllocedBytesPerOp(); n > 1024 {
		t.Errorf("Verify of a 1 MB token of dots: %d bytes allocated, want at most 1 KiB", n)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+dots)
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := v.VerifyRequest(req); reasonOf(err) != auth.ReasonTooLarge {
			t.Fatalf("err %v", err)
		}
	})
	if allocs > 6 {
		t.Errorf("VerifyRequest of a 1 MB token of dots: %v allocations, want at most 6", allocs)
	}
	// Just under the limit, dots are parsed and refused as malformed, still
	// without allocating per dot.
	under := strings.Repeat(".", auth.MaxTokenSize)
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(ctx, under); reasonOf(err) != auth.ReasonMalformed {
			t.Fatalf("err %v", err)
		}
	})
	if allocs > 10 {
		t.Errorf("Verify of %d dots: %v allocations, want at most 10", auth.MaxTokenSize, allocs)
	}
}

func TestVerifyLeeway(t *testing.T) {
	in := staticIssuer()
	in.Leeway = 30 * time.Second
	v := newVerifier(t, []auth.Issuer{in})
	tests := []struct {
		name   string
		edits  map[string]any
		reason auth.Reason
	}{
		{name: "expired within leeway", edits: map[string]any{"exp": t0.Add(-29 * time.Second).Unix()}},
		{name: "expired beyond leeway", edits: map[string]any{"exp": t0.Add(-31 * time.Second).Unix()}, reason: auth.ReasonExpired},
		{name: "nbf within leeway", edits: map[string]any{"nbf": t0.Add(29 * time.Second).Unix()}},
		{name: "nbf beyond leeway", edits: map[string]any{"nbf": t0.Add(31 * time.Second).Unix()}, reason: auth.ReasonNotYetValid},
		{name: "iat within leeway", edits: map[string]any{"iat": t0.Add(29 * time.Second).Unix()}},
		{name: "iat beyond leeway", edits: map[string]any{"iat": t0.Add(31 * time.Second).Unix()}, reason: auth.ReasonNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), signEd(t, claims(tt.edits)))
			if reasonOf(err) != tt.reason || (tt.reason == "" && err != nil) {
				t.Errorf("err %v, want reason %q", err, tt.reason)
			}
		})
	}
}

// TestVerifyIssuerConfusion: the unverified iss only picks the keys. A token
// that claims issuer A but is signed by issuer B's key is refused, and B's key
// ID means nothing under A.
func TestVerifyIssuerConfusion(t *testing.T) {
	k := keys()
	a := auth.Issuer{Issuer: "https://a.test", Audiences: []string{"api"}, Algorithms: []string{"EdDSA"},
		Keys: []auth.Key{{ID: "a1", Algorithm: "EdDSA", Key: k.ed.Public()}}}
	b := auth.Issuer{Issuer: "https://b.test", Audiences: []string{"api"}, Algorithms: []string{"EdDSA"},
		Keys: []auth.Key{{ID: "b1", Algorithm: "EdDSA", Key: k.ed2.Public()}}}
	v := newVerifier(t, []auth.Issuer{a, b})
	ctx := context.Background()
	asA := claims(map[string]any{"iss": "https://a.test"})
	tests := []struct {
		name   string
		tok    string
		reason auth.Reason
	}{
		{name: "A's claims, B's key and kid", tok: sign(t, jwt.SigningMethodEdDSA, k.ed2, "b1", asA, nil), reason: auth.ReasonUnknownKey},
		{name: "A's claims, B's key under A's kid", tok: sign(t, jwt.SigningMethodEdDSA, k.ed2, "a1", asA, nil), reason: auth.ReasonSignature},
		{name: "A's claims, B's key, no kid", tok: sign(t, jwt.SigningMethodEdDSA, k.ed2, "", asA, nil), reason: auth.ReasonSignature},
		{name: "A's claims, A's key", tok: sign(t, jwt.SigningMethodEdDSA, k.ed, "a1", asA, nil)},
		{name: "B's claims, B's key", tok: sign(t, jwt.SigningMethodEdDSA, k.ed2, "b1", claims(map[string]any{"iss": "https://b.test"}), nil)},
		{name: "iss a number", tok: sign(t, jwt.SigningMethodEdDSA, k.ed, "a1", claims(map[string]any{"iss": 7}), nil), reason: auth.ReasonIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(ctx, tt.tok)
			if reasonOf(err) != tt.reason || (tt.reason == "" && err != nil) {
				t.Fatalf("err %v, want reason %q", err, tt.reason)
			}
			if err == nil && c.Issuer != tt.tok[:0]+c.Raw["iss"].(string) {
				t.Errorf("Issuer %q", c.Issuer)
			}
		})
	}
}

func TestVerifyClaims(t *testing.T) {
	v := newVerifier(t, []auth.Issuer{staticIssuer()})
	nbf := t0.Add(-time.Hour)
	tok := signEd(t, claims(map[string]any{"jti": "id-1", "nbf": nbf.Unix(), "aud": []string{"api", "x"}, "tenant": "t1"}))
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "user-42" || c.ID != "id-1" || c.Issuer != testIssuer {
		t.Errorf("claims %+v", c)
	}
	if len(c.Audience) != 2 || c.Audience[0] != "api" || c.Audience[1] != "x" {
		t.Errorf("Audience %q", c.Audience)
	}
	if !c.NotBefore.Equal(nbf) || !c.IssuedAt.Equal(t0.Add(-time.Minute)) || !c.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("times %v %v %v", c.NotBefore, c.IssuedAt, c.ExpiresAt)
	}
	if c.Raw["tenant"] != "t1" {
		t.Errorf("Raw %v", c.Raw)
	}
	if !c.HasScope("profile") || c.HasScope("prof") {
		t.Errorf("HasScope with %q", c.Scopes)
	}
	if (*auth.Claims)(nil).HasScope("profile") {
		t.Error("nil Claims has a scope")
	}
	if _, err := v.Verify(context.Background(), signEd(t, claims(map[string]any{"jti": 5}))); reasonOf(err) != auth.ReasonMalformed {
		t.Errorf("jti a number: %v", err)
	}
	if _, err := v.Verify(context.Background(), signEd(t, claims(map[string]any{"sub": 5}))); reasonOf(err) != auth.ReasonMalformed {
		t.Errorf("sub a number: %v", err)
	}
	if _, err := v.Verify(context.Background(), ""); reasonOf(err) != auth.ReasonMissing {
		t.Errorf("empty: %v", err)
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if c, ok := auth.FromContext(ctx); ok || c != nil {
		t.Error("claims in an empty context")
	}
	if _, ok := auth.FromContext(auth.NewContext(ctx, nil)); ok {
		t.Error("nil claims reported present")
	}
	want := &auth.Claims{Subject: "s"}
	if c, ok := auth.FromContext(auth.NewContext(ctx, want)); !ok || c != want {
		t.Errorf("got %v %v", c, ok)
	}
}

func TestErrorUnwraps(t *testing.T) {
	v := newVerifier(t, []auth.Issuer{staticIssuer()})
	_, err := v.Verify(context.Background(), signEd(t, claims(map[string]any{"exp": t0.Add(-time.Hour).Unix()})))
	if !strings.HasPrefix(err.Error(), "auth: expired: ") {
		t.Errorf("Error() %q", err)
	}
	if e, ok := err.(*auth.Error); !ok || e.Unwrap() == nil {
		t.Errorf("%T %v", err, err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	if _, err := v.VerifyRequest(req); reasonOf(err) != auth.ReasonMissing {
		t.Errorf("no header: %v", err)
	}
	req.Header = http.Header{"Authorization": {"Bearer " + signEd(t, claims(nil))}}
	if c, err := v.VerifyRequest(req); err != nil || c.Subject != "user-42" {
		t.Errorf("%v %v", c, err)
	}
}
