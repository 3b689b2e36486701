package shopauth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/pier-go/pier/auth"
)

// The token rules shared by the users service, which issues tokens, and by
// every service that verifies them.
const (
	Issuer     = "shop-users"
	Audience   = "shop"
	Algorithm  = "EdDSA"
	AdminScope = "admin"
	// InternalScope is held by services' own tokens (see ServiceTokens): the
	// routes only orders may call (reservations, charges, refunds) require it,
	// so a user's token, forwarded or not, cannot call them.
	InternalScope = "internal"
	// TokenURL is the users service's token endpoint for services (the OAuth 2.0
	// client credentials grant), reached through the discovery-aware client.
	TokenURL = "http://users/oauth/token"
	// JWKSURL is where the users service serves its public keys, reached
	// through the discovery-aware client.
	JWKSURL = "http://users/.well-known/jwks.json"
	// UnknownKidInterval is the least time between two JWKS fetches caused by
	// tokens naming a key the verifier does not hold, and the longest pause
	// between first-fetch retries while the users service is not up yet.
	UnknownKidInterval = 10 * time.Second
)

// Verifier and Claims are the auth package's.
type (
	Verifier = auth.Verifier
	Claims   = auth.Claims
)

// NewVerifier returns a verifier of the shop's tokens that reads the public
// keys from the users service's JWKS (JWKSURL) through client, the Service's
// discovery-aware client. Close it when the service stops.
func NewVerifier(client *http.Client, log *slog.Logger) (*Verifier, error) {
	if client == nil {
		return nil, errors.New("shopauth: nil client")
	}
	v, err := auth.NewVerifier([]auth.Issuer{{
		Issuer:     Issuer,
		Audiences:  []string{Audience},
		Algorithms: []string{Algorithm},
		JWKSURL:    JWKSURL,
	}}, auth.WithHTTPClient(client), auth.WithUnknownKidInterval(UnknownKidInterval), auth.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("shopauth: %w", err)
	}
	return v, nil
}

// NewStaticVerifier returns a verifier of the shop's tokens for the single key
// pub, named kid: the users service checks its own tokens with it.
func NewStaticVerifier(kid string, pub ed25519.PublicKey) (*Verifier, error) {
	v, err := auth.NewVerifier([]auth.Issuer{{
		Issuer:     Issuer,
		Audiences:  []string{Audience},
		Algorithms: []string{Algorithm},
		Keys:       []auth.Key{{ID: kid, Algorithm: Algorithm, Key: pub}},
	}})
	if err != nil {
		return nil, fmt.Errorf("shopauth: %w", err)
	}
	return v, nil
}

// Require returns the auth package's middleware: 401 unless the request
// carries one valid bearer token, 403 unless the token holds every scope in
// scopes; the claims are then in the request's context (FromContext).
func Require(v *Verifier, scopes ...string) func(http.Handler) http.Handler {
	if len(scopes) == 0 {
		return auth.Require(v)
	}
	return auth.Require(v, auth.WithScopes(auth.AllScopes(scopes...)))
}

// ServiceTokens returns the token source of a service's own token: the
// client credentials grant at TokenURL, through client (the Service's
// discovery-aware client), the token cached until shortly before it expires.
// It is safe for concurrent use.
func ServiceTokens(client *http.Client, id, secret string) oauth2.TokenSource {
	cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: TokenURL, AuthStyle: oauth2.AuthStyleInHeader}
	// oauth2 takes its HTTP client from the context it keeps for refreshes.
	return cfg.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, client))
}

// FromContext returns the claims that Require verified for the request.
func FromContext(ctx context.Context) (*Claims, bool) { return auth.FromContext(ctx) }

// Subject returns the subject of the token Require verified for r; false when
// there is none. It is the caller scope services give
// idempotency.WithCallerScope, so that two callers who pick the same
// Idempotency-Key never share an answer.
func Subject(r *http.Request) (string, bool) {
	c, ok := FromContext(r.Context())
	if !ok {
		return "", false
	}
	return c.Subject, true
}
