package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/auth"
)

// FuzzVerify feeds arbitrary tokens to a Verifier that trusts one Ed25519 and
// one HMAC key. It must never panic, refuse only with an *auth.Error, and accept
// only tokens whose signature an independent check confirms under the test key
// of the token's algorithm. The seed corpus is in testdata/fuzz/FuzzVerify; its
// valid tokens are signed with the fixed test keys and expire after t0.
func FuzzVerify(f *testing.F) {
	k := keys()
	in := auth.Issuer{
		Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"EdDSA", "HS256"},
		Keys: []auth.Key{
			{ID: "ed", Algorithm: "EdDSA", Key: k.ed.Public()},
			{ID: "hs", Algorithm: "HS256", Key: k.hs},
		},
	}
	v := newVerifier(f, []auth.Issuer{in})
	pub := k.ed.Public().(ed25519.PublicKey)

	f.Add(signEd(f, claims(nil)))
	f.Add(sign(f, jwt.SigningMethodHS256, k.hs, "hs", claims(nil), nil))
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(pub), "ed", claims(nil), nil))
	f.Add(rawToken(f, map[string]any{"alg": "none"}, claims(nil), ""))
	f.Add("..")
	f.Add("")

	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			if reasonOf(err) == "" {
				t.Fatalf("refused without an *auth.Error: %v", err)
			}
			return
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
		sig, err2 := base64.RawURLEncoding.DecodeString(parts[2])
		var h struct {
			Alg string `json:"alg"`
		}
		if err1 != nil || err2 != nil || json.Unmarshal(hb, &h) != nil {
			t.Fatalf("accepted an undecodable token %q", tok)
		}
		signed := []byte(parts[0] + "." + parts[1])
		switch h.Alg {
		case "EdDSA":
			if !ed25519.Verify(pub, signed, sig) {
				t.Fatalf("accepted an EdDSA token not signed by the test key: %q", tok)
			}
		case "HS256":
			m := hmac.New(sha256.New, k.hs)
			m.Write(signed)
			if !hmac.Equal(m.Sum(nil), sig) {
				t.Fatalf("accepted an HS256 token not signed by the test secret: %q", tok)
			}
		default:
			t.Fatalf("accepted alg %q", h.Alg)
		}
		if c.Issuer != testIssuer || !c.ExpiresAt.After(t0) {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}

// TestFuzzSeedsStillValid keeps the checked-in corpus meaningful: its valid-*
// tokens must verify, so that the fuzzer starts from accepted tokens.
func TestFuzzSeedsStillValid(t *testing.T) {
	v := newVerifier(t, []auth.Issuer{{
		Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"EdDSA", "HS256"},
		Keys: []auth.Key{
			{ID: "ed", Algorithm: "EdDSA", Key: keys().ed.Public()},
			{ID: "hs", Algorithm: "HS256", Key: keys().hs},
		},
	}})
	files, err := filepath.Glob("testdata/fuzz/FuzzVerify/valid-*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		_, quoted, _ := strings.Cut(strings.TrimSpace(string(b)), "string(")
		tok, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
