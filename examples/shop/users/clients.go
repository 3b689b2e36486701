package users

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/examples/shop/internal/ids"
	"github.com/pier-go/pier/examples/shop/internal/shopauth"
	"github.com/pier-go/pier/examples/shop/internal/web"
	"github.com/pier-go/pier/service"
)

// Client is a service that may get a token of its own, with the OAuth 2.0
// client credentials grant (RFC 6749 section 4.4) at POST /oauth/token, to
// call routes that no user may call (the stock reservations, the charges).
// Its tokens have the subject "service:<ID>" and the client's scopes.
type Client struct {
	ID     string
	Secret string
	Scopes []string
}

// WithClients sets the services that may get tokens of their own. The default
// is none: POST /oauth/token then refuses every request.
func WithClients(clients ...Client) Option {
	return func(u *Users) {
		for _, c := range clients {
			u.clients[c.ID] = client{secret: sha256.Sum256([]byte(c.Secret)), scopes: strings.Join(c.Scopes, " ")}
		}
	}
}

type client struct {
	secret [32]byte // SHA-256 of the secret, compared in constant time
	scopes string
}

// token answers the client credentials grant: the client authenticates with
// HTTP Basic, the body is grant_type=client_credentials, form-encoded.
func (u *Users) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	c, known := u.clients[id]
	sum := sha256.Sum256([]byte(secret))
	if !ok || !known || subtle.ConstantTimeCompare(sum[:], c.secret[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="shop"`)
		web.Fail(w, r, http.StatusUnauthorized, "unknown client or wrong secret", "error", "invalid_client")
		return
	}
	if err := r.ParseForm(); err != nil {
		web.Fail(w, r, http.StatusBadRequest, "the body must be application/x-www-form-urlencoded", "error", "invalid_request")
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		web.Fail(w, r, http.StatusBadRequest, fmt.Sprintf("grant_type %q is not supported; use client_credentials", g), "error", "unsupported_grant_type")
		return
	}
	tok, err := u.sign("service:"+id, c.scopes)
	if err != nil {
		web.Internal(w, r, u.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	_ = service.WriteJSON(w, http.StatusOK, tokenJSON{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(TokenTTL / time.Second)})
}

// sign returns a signed access token for subject with scopes (space
// separated, or ""): EdDSA, iss shop-users, aud shop, valid for TokenTTL.
func (u *Users) sign(subject, scopes string) (string, error) {
	if subject == "" {
		return "", errors.New("users: no subject")
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": shopauth.Issuer,
		"aud": shopauth.Audience,
		"sub": subject,
		"iat": now.Unix(),
		"exp": now.Add(TokenTTL).Unix(),
		"jti": ids.New("t"),
	}
	if scopes != "" {
		claims["scope"] = scopes
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = u.kid
	s, err := t.SignedString(u.key)
	if err != nil {
		return "", fmt.Errorf("users: sign: %w", err)
	}
	return s, nil
}
