package auth_test

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/auth"
)

// serve runs one request through Require(v, opts...) around a handler that
// records whether it ran and the claims it saw.
func serve(t *testing.T, v *auth.Verifier, header http.Header, opts ...auth.RequireOption) (rec *httptest.ResponseRecorder, ran bool, seen *auth.Claims, failed *auth.Error) {
	t.Helper()
	opts = append(opts, auth.WithOnFailure(func(_ *http.Request, err *auth.Error) { failed = err }))
	h := auth.Require(v, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		seen, _ = auth.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest("GET", "/orders/1", nil)
	req.Header = header
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, ran, seen, failed
}

func bearerHeader(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// TestRequireRefusesAttacks is the acceptance table: every attack gets 401
// problem+json with the RFC 6750 challenge, its Reason, and never reaches the
// handler.
func TestRequireRefusesAttacks(t *testing.T) {
	k := keys()
	v := newVerifier(t, []auth.Issuer{staticIssuer()})
	rsaOnly := newVerifier(t, []auth.Issuer{{
		Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"RS256"},
		Keys: []auth.Key{{ID: "rs", Algorithm: "RS256", Key: &k.rsa.PublicKey}},
	}})
	rsaDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	valid := signEd(t, claims(nil))

	type tc struct {
		name   string
		v      *auth.Verifier // nil: v
		header http.Header
		reason auth.Reason
	}
	tests := []tc{
		{name: "HS256 signed with the RSA public key PEM, kid of the RSA key",
			header: bearerHeader(sign(t, jwt.SigningMethodHS256, k.rsaPEM, "rs", claims(nil), nil)), reason: auth.ReasonAlgorithm},
		{name: "HS256 signed with the RSA public key PEM, no kid",
			header: bearerHeader(sign(t, jwt.SigningMethodHS256, k.rsaPEM, "", claims(nil), nil)), reason: auth.ReasonSignature},
		{name: "HS256 signed with the RSA public key DER, no kid",
			header: bearerHeader(sign(t, jwt.SigningMethodHS256, rsaDER, "", claims(nil), nil)), reason: auth.ReasonSignature},
		{name: "HS256 signed with the RSA public key PEM, RS256-only issuer", v: rsaOnly,
			header: bearerHeader(sign(t, jwt.SigningMethodHS256, k.rsaPEM, "rs", claims(nil), nil)), reason: auth.ReasonAlgorithm},
		{name: "unknown kid",
			header: bearerHeader(sign(t, jwt.SigningMethodEdDSA, k.ed, "nope", claims(nil), nil)), reason: auth.ReasonUnknownKey},
		{name: "kid of a key with another algorithm",
			header: bearerHeader(sign(t, jwt.SigningMethodEdDSA, k.ed, "rs", claims(nil), nil)), reason: auth.ReasonAlgorithm},
		{name: "kid of the HMAC key, signed ES256",
			header: bearerHeader(sign(t, jwt.SigningMethodES256, k.ec, "hs", claims(nil), nil)), reason: auth.ReasonAlgorithm},
		{name: "signed by another issuer's key under our kid",
			header: bearerHeader(sign(t, jwt.SigningMethodEdDSA, k.ed2, "ed", claims(nil), nil)), reason: auth.ReasonSignature},
		{name: "payload swapped after signing",
			header: bearerHeader(swapPayload(t, valid, claims(map[string]any{"sub": "admin"}))), reason: auth.ReasonSignature},
		{name: "jku header", header: bearerHeader(sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(nil),
			map[string]any{"jku": "https://evil.test/jwks.json"})), reason: auth.ReasonHeader},
		{name: "jwk header", header: bearerHeader(sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(nil),
			map[string]any{"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}})), reason: auth.ReasonHeader},
		{name: "x5u header", header: bearerHeader(sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(nil),
			map[string]any{"x5u": "https://evil.test/cert.pem"})), reason: auth.ReasonHeader},
		{name: "crit header", header: bearerHeader(sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(nil),
			map[string]any{"crit": []string{"exp"}})), reason: auth.ReasonHeader},
		{name: "expired", header: bearerHeader(signEd(t, claims(map[string]any{"exp": t0.Add(-time.Second).Unix()}))), reason: auth.ReasonExpired},
		{name: "not yet valid (nbf)", header: bearerHeader(signEd(t, claims(map[string]any{"nbf": t0.Add(time.Minute).Unix()}))), reason: auth.ReasonNotYetValid},
		{name: "issued in the future (iat)", header: bearerHeader(signEd(t, claims(map[string]any{"iat": t0.Add(time.Minute).Unix()}))), reason: auth.ReasonNotYetValid},
		{name: "missing exp", header: bearerHeader(signEd(t, claims(map[string]any{"exp": nil}))), reason: auth.ReasonMalformed},
		{name: "exp of the wrong type", header: bearerHeader(signEd(t, claims(map[string]any{"exp": "tomorrow"}))), reason: auth.ReasonMalformed},
		{name: "wrong iss", header: bearerHeader(signEd(t, claims(map[string]any{"iss": "https://evil.test"}))), reason: auth.ReasonIssuer},
		{name: "missing iss", header: bearerHeader(signEd(t, claims(map[string]any{"iss": nil}))), reason: auth.ReasonIssuer},
		{name: "wrong aud", header: bearerHeader(signEd(t, claims(map[string]any{"aud": "other"}))), reason: auth.ReasonAudience},
		{name: "missing aud", header: bearerHeader(signEd(t, claims(map[string]any{"aud": nil}))), reason: auth.ReasonAudience},
		{name: "aud []", header: bearerHeader(signEd(t, claims(map[string]any{"aud": []string{}}))), reason: auth.ReasonAudience},
		{name: `aud [""]`, header: bearerHeader(signEd(t, claims(map[string]any{"aud": []string{""}}))), reason: auth.ReasonAudience},
		{name: "aud array without ours", header: bearerHeader(signEd(t, claims(map[string]any{"aud": []string{"a", "b"}}))), reason: auth.ReasonAudience},
		{name: "aud a number", header: bearerHeader(signEd(t, claims(map[string]any{"aud": 42}))), reason: auth.ReasonAudience},
		{name: "aud array holding a number", header: bearerHeader(signEd(t, claims(map[string]any{"aud": []any{testAudience, 42}}))), reason: auth.ReasonMalformed},
		{name: "scope of the wrong type", header: bearerHeader(signEd(t, claims(map[string]any{"scope": []string{"a"}}))), reason: auth.ReasonMalformed},
		{name: "1 MB token of dots", header: bearerHeader(strings.Repeat(".", 1<<20)), reason: auth.ReasonTooLarge},
		{name: "token just over the limit", header: bearerHeader(valid + strings.Repeat("A", auth.MaxTokenSize-len(valid)+1)), reason: auth.ReasonTooLarge},
		{name: "two Authorization headers", header: http.Header{"Authorization": {"Bearer " + valid, "Bearer " + valid}}, reason: auth.ReasonHeader},
		{name: "CR LF in the header", header: http.Header{"Authorization": {"Bearer " + valid + "\r\nX-Admin: 1"}}, reason: auth.ReasonHeader},
		{name: "NUL in the header", header: http.Header{"Authorization": {"Bearer " + valid + "\x00"}}, reason: auth.ReasonHeader},
		{name: "empty token", header: http.Header{"Authorization": {"Bearer "}}, reason: auth.ReasonMalformed},
		{name: "scheme alone", header: http.Header{"Authorization": {"Bearer"}}, reason: auth.ReasonMalformed},
		{name: "token with a space inside", header: http.Header{"Authorization": {"Bearer " + valid[:10] + " " + valid[10:]}}, reason: auth.ReasonMalformed},
		{name: "not a JWT", header: bearerHeader("abc.def"), reason: auth.ReasonMalformed},
		{name: "no Authorization header", header: http.Header{}, reason: auth.ReasonMissing},
		{name: "Basic scheme", header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, reason: auth.ReasonMissing},
		{name: "token in another header only", header: http.Header{"X-Token": {valid}}, reason: auth.ReasonMissing},
	}
	for _, alg := range casings("none") {
		tests = append(tests,
			tc{name: "alg " + alg + " unsigned", reason: auth.ReasonAlgorithm,
				header: bearerHeader(rawToken(t, map[string]any{"alg": alg, "typ": "JWT", "kid": "ed"}, claims(nil), ""))},
			tc{name: "alg " + alg + " with a signature", reason: auth.ReasonAlgorithm,
				header: bearerHeader(rawToken(t, map[string]any{"alg": alg}, claims(nil), strings.Split(valid, ".")[2]))},
		)
	}
	tests = append(tests, tc{name: "alg none signed the library's way", reason: auth.ReasonAlgorithm,
		header: bearerHeader(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil), nil))})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ver := v
			if tt.v != nil {
				ver = tt.v
			}
			rec, ran, _, failed := serve(t, ver, tt.header)
			if ran {
				t.Fatal("the wrapped handler ran")
			}
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			wantChallenge := `Bearer error="invalid_token"`
			if tt.reason == auth.ReasonMissing {
				wantChallenge = "Bearer"
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != wantChallenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, wantChallenge)
			}
			if failed == nil || failed.Reason != tt.reason {
				t.Fatalf("failure %v, want reason %q", failed, tt.reason)
			}
			var body struct {
				Status int    `json:"status"`
				Detail string `json:"detail"`
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if body.Status != 401 || body.Reason != string(tt.reason) || body.Detail == "" {
				t.Errorf("body %+v", body)
			}
			assertNoLeak(t, rec.Body.String())
		})
	}
}

// assertNoLeak fails when a problem body holds key material or a token.
func assertNoLeak(t *testing.T, body string) {
	t.Helper()
	k := keys()
	for _, secret := range []string{string(k.hs), "MII", "BEGIN", "eyJ", "issuer.test"} {
		if strings.Contains(body, secret) {
			t.Errorf("problem body %q holds %q", body, secret)
		}
	}
}

// casings returns every upper/lower-case spelling of s.
func casings(s string) []string {
	out := []string{""}
	for _, r := range s {
		var next []string
		for _, p := range out {
			next = append(next, p+strings.ToLower(string(r)), p+strings.ToUpper(string(r)))
		}
		out = next
	}
	return out
}

// swapPayload keeps tok's header and signature and replaces its claims.
func swapPayload(t *testing.T, tok string, c jwt.MapClaims) string {
	parts := strings.Split(tok, ".")
	other := strings.Split(rawToken(t, map[string]any{}, c, ""), ".")
	return parts[0] + "." + other[1] + "." + parts[2]
}

func TestRequirePassesValidTokens(t *testing.T) {
	k := keys()
	v := newVerifier(t, []auth.Issuer{staticIssuer()})
	tests := []struct {
		name   string
		header http.Header
		scopes []string
	}{
		{name: "EdDSA", header: bearerHeader(signEd(t, claims(nil))), scopes: []string{"orders:read", "profile"}},
		{name: "RS256", header: bearerHeader(sign(t, jwt.SigningMethodRS256, k.rsa, "rs", claims(nil), nil)), scopes: []string{"orders:read", "profile"}},
		{name: "ES256", header: bearerHeader(sign(t, jwt.SigningMethodES256, k.ec, "es", claims(nil), nil)), scopes: []string{"orders:read", "profile"}},
		{name: "HS256", header: bearerHeader(sign(t, jwt.SigningMethodHS256, k.hs, "hs", claims(nil), nil)), scopes: []string{"orders:read", "profile"}},
		{name: "no kid: tried against the keys of its algorithm", header: bearerHeader(sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(nil), nil)), scopes: []string{"orders:read", "profile"}},
		{name: "lowercase bearer", header: http.Header{"Authorization": {"bearer " + signEd(t, claims(nil))}}, scopes: []string{"orders:read", "profile"}},
		{name: "BEARER and two spaces", header: http.Header{"Authorization": {"BEARER  " + signEd(t, claims(nil))}}, scopes: []string{"orders:read", "profile"}},
		{name: "aud array with ours", header: bearerHeader(signEd(t, claims(map[string]any{"aud": []string{"other", testAudience}}))), scopes: []string{"orders:read", "profile"}},
		{name: "our second audience", header: bearerHeader(signEd(t, claims(map[string]any{"aud": "api2"}))), scopes: []string{"orders:read", "profile"}},
		{name: "scp array", header: bearerHeader(signEd(t, claims(map[string]any{"scope": nil, "scp": []string{"a", "b"}}))), scopes: []string{"a", "b"}},
		{name: "scp string", header: bearerHeader(signEd(t, claims(map[string]any{"scope": nil, "scp": "a b"}))), scopes: []string{"a", "b"}},
		{name: "nbf now", header: bearerHeader(signEd(t, claims(map[string]any{"nbf": t0.Unix()}))), scopes: []string{"orders:read", "profile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, ran, seen, failed := serve(t, v, tt.header)
			if !ran || rec.Code != http.StatusNoContent {
				t.Fatalf("status %d, handler ran %v, failure %v", rec.Code, ran, failed)
			}
			if seen == nil || seen.Subject != "user-42" || seen.Issuer != testIssuer {
				t.Fatalf("claims %+v", seen)
			}
			if !slices.Equal(seen.Scopes, tt.scopes) {
				t.Errorf("scopes %q, want %q", seen.Scopes, tt.scopes)
			}
			if !seen.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("ExpiresAt %v", seen.ExpiresAt)
			}
		})
	}
}

func TestRequireScopes(t *testing.T) {
	v := newVerifier(t, []auth.Issuer{staticIssuer()})
	tok := bearerHeader(signEd(t, claims(map[string]any{"scope": "orders:read profile"})))
	tests := []struct {
		name  string
		rules []auth.ScopeRule
		pass  bool
		scope string // the challenge's scope attribute when refused
	}{
		{name: "any of, one held", rules: []auth.ScopeRule{auth.AnyScope("orders:write", "orders:read")}, pass: true},
		{name: "any of, none held", rules: []auth.ScopeRule{auth.AnyScope("orders:write", "admin")}, scope: "orders:write admin"},
		{name: "all of, all held", rules: []auth.ScopeRule{auth.AllScopes("orders:read", "profile")}, pass: true},
		{name: "all of, one missing", rules: []auth.ScopeRule{auth.AllScopes("orders:read", "orders:write")}, scope: "orders:read orders:write"},
		{name: "prefix is not a match", rules: []auth.ScopeRule{auth.AnyScope("orders")}, scope: "orders"},
		{name: "superstring is not a match", rules: []auth.ScopeRule{auth.AnyScope("orders:read:all")}, scope: "orders:read:all"},
		{name: "case matters", rules: []auth.ScopeRule{auth.AnyScope("Orders:Read")}, scope: "Orders:Read"},
		{name: "two rules, both hold", rules: []auth.ScopeRule{auth.AnyScope("profile"), auth.AllScopes("orders:read")}, pass: true},
		{name: "two rules, second fails", rules: []auth.ScopeRule{auth.AnyScope("profile"), auth.AllScopes("admin")}, scope: "admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []auth.RequireOption
			for _, r := range tt.rules {
				opts = append(opts, auth.WithScopes(r))
			}
			rec, ran, _, failed := serve(t, v, tok, opts...)
			if tt.pass {
				if !ran || rec.Code != http.StatusNoContent {
					t.Fatalf("status %d, failure %v", rec.Code, failed)
				}
				return
			}
			if ran || rec.Code != http.StatusForbidden {
				t.Fatalf("status %d, handler ran %v", rec.Code, ran)
			}
			if failed == nil || failed.Reason != auth.ReasonScope {
				t.Fatalf("failure %v", failed)
			}
			want := `Bearer error="insufficient_scope", scope="` + tt.scope + `"`
			if got := rec.Header().Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// TestRequireFailsClosed: a misconfigured middleware lets nothing through.
func TestRequireFailsClosed(t *testing.T) {
	v := newVerifier(t, []auth.Issuer{staticIssuer()})
	tok := bearerHeader(signEd(t, claims(nil)))
	tests := []struct {
		name string
		v    *auth.Verifier
		opts []auth.RequireOption
	}{
		{name: "nil verifier"},
		{name: "nil option", v: v, opts: []auth.RequireOption{nil}},
		{name: "zero scope rule", v: v, opts: []auth.RequireOption{auth.WithScopes(auth.ScopeRule{})}},
		{name: "empty any-of", v: v, opts: []auth.RequireOption{auth.WithScopes(auth.AnyScope())}},
		{name: "scope with a space", v: v, opts: []auth.RequireOption{auth.WithScopes(auth.AllScopes("orders:read profile"))}},
		{name: "scope with a quote", v: v, opts: []auth.RequireOption{auth.WithScopes(auth.AnyScope(`a"b`))}},
		{name: "nil failure hook", v: v, opts: []auth.RequireOption{auth.WithOnFailure(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := false
			h := auth.Require(tt.v, tt.opts...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true }))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header = tok
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if ran || rec.Code != http.StatusInternalServerError {
				t.Fatalf("status %d, handler ran %v", rec.Code, ran)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	c := &auth.Claims{Scopes: []string{"a", "b"}}
	if err := auth.Check(c, auth.AllScopes("a", "b")); err != nil {
		t.Error(err)
	}
	if err := auth.Check(c, auth.AllScopes("a", "c")); reasonOf(err) != auth.ReasonScope {
		t.Errorf("all of a c: %v", err)
	}
	if err := auth.Check(nil, auth.AnyScope("a")); reasonOf(err) != auth.ReasonScope {
		t.Errorf("nil claims: %v", err)
	}
	if err := auth.Check(c, auth.AnyScope()); err == nil || reasonOf(err) != "" {
		t.Errorf("invalid rule: %v", err)
	}
	if s := auth.AnyScope("a", "b").String(); s != "any of a b" {
		t.Errorf("String %q", s)
	}
}
