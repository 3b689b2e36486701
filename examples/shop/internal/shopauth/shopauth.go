// Package shopauth holds the shop's token rules in one place: the issuer,
// audience and algorithm every service accepts, the admin scope, and the
// middleware that verifies a request's bearer token and puts its claims in the
// request's context. Services trust nothing else: no identity header, no user
// id in a body.
package shopauth

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/pier-go/pier/problem"
)

// The token rules shared by the users service, which issues tokens, and by
// every service that verifies them.
const (
	Issuer     = "shop-users"
	Audience   = "shop"
	Algorithm  = "EdDSA"
	AdminScope = "admin"
	// JWKSURL is where the users service serves its public keys, reached
	// through the discovery-aware client.
	JWKSURL = "http://users/.well-known/jwks.json"
)

// Claims are the verified claims of a request's token.
type Claims struct {
	Subject string
	Scopes  []string
}

// HasScope reports whether the token was granted scope s.
func (c *Claims) HasScope(s string) bool { return slices.Contains(c.Scopes, s) }

type claimsKey struct{}

// FromContext returns the claims that Require verified for the request.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Verifier checks bearer tokens against the shop's rules and the users
// service's keys. It is safe for concurrent use.
type Verifier struct {
	kf     keyfunc.Keyfunc
	parser *jwt.Parser
	cancel context.CancelFunc
}

// NewVerifier returns a verifier that reads the public keys from the users
// service's JWKS (JWKSURL) through client, the Service's discovery-aware
// client, refreshing them hourly and when a token names an unknown key
// (at most once a second). Close stops the refresh.
func NewVerifier(client *http.Client) (*Verifier, error) {
	if client == nil {
		return nil, errors.New("shopauth: nil client")
	}
	ctx, cancel := context.WithCancel(context.Background())
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{JWKSURL}, keyfunc.Override{
		Client:                  client,
		HTTPTimeout:             5 * time.Second,
		RefreshUnknownKID:       rate.NewLimiter(rate.Every(time.Second), 1),
		RateLimitWaitMax:        2 * time.Second,
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) { return func(context.Context, error) {} },
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("shopauth: %w", err)
	}
	return newVerifier(kf, cancel), nil
}

// NewStaticVerifier returns a verifier for the single key pub, named kid: the
// users service verifies its own tokens with it.
func NewStaticVerifier(kid string, pub ed25519.PublicKey) (*Verifier, error) {
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
	if err != nil {
		return nil, fmt.Errorf("shopauth: %w", err)
	}
	raw, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		return nil, fmt.Errorf("shopauth: %w", err)
	}
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("shopauth: %w", err)
	}
	return newVerifier(kf, func() {}), nil
}

func newVerifier(kf keyfunc.Keyfunc, cancel context.CancelFunc) *Verifier {
	return &Verifier{
		kf:     kf,
		cancel: cancel,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{Algorithm}),
			jwt.WithIssuer(Issuer),
			jwt.WithAudience(Audience),
			jwt.WithExpirationRequired(),
		),
	}
}

// Close stops the key refresh. It is idempotent.
func (v *Verifier) Close() error { v.cancel(); return nil }

// Verify checks token and returns its claims.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	var mc jwt.MapClaims
	if _, err := v.parser.ParseWithClaims(token, &mc, v.kf.KeyfuncCtx(ctx)); err != nil {
		return nil, fmt.Errorf("shopauth: %w", err)
	}
	sub, err := mc.GetSubject()
	if err != nil || sub == "" {
		return nil, errors.New("shopauth: token has no subject")
	}
	c := &Claims{Subject: sub}
	if s, ok := mc["scope"].(string); ok {
		c.Scopes = strings.Fields(s)
	}
	return c, nil
}

// Require returns middleware that answers 401 (with WWW-Authenticate: Bearer)
// unless the request carries exactly one valid bearer token, and 403 unless
// the token holds every scope in scopes; on success the claims are in the
// request's context (FromContext).
func Require(v *Verifier, scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Values("Authorization")
			tok, ok := "", len(h) == 1
			if ok {
				tok, ok = strings.CutPrefix(h[0], "Bearer ")
			}
			if !ok || tok == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="shop"`)
				problem.Write(w, r, problem.Problem{Status: http.StatusUnauthorized, Detail: "a bearer token is required"})
				return
			}
			c, err := v.Verify(r.Context(), tok)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="shop", error="invalid_token"`)
				problem.Write(w, r, problem.Problem{Status: http.StatusUnauthorized, Detail: "the bearer token is not valid"})
				return
			}
			for _, s := range scopes {
				if !c.HasScope(s) {
					w.Header().Set("WWW-Authenticate", `Bearer realm="shop", error="insufficient_scope", scope="`+s+`"`)
					problem.Write(w, r, problem.Problem{Status: http.StatusForbidden, Detail: "the token lacks the scope " + s})
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
		})
	}
}
