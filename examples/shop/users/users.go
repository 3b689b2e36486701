package users

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/MicahParks/jwkset"

	"github.com/pier-go/pier/examples/shop/internal/ids"
	"github.com/pier-go/pier/examples/shop/internal/shopauth"
	"github.com/pier-go/pier/examples/shop/internal/web"
	"github.com/pier-go/pier/service"
)

// TokenTTL is how long an access token is valid.
const TokenTTL = time.Hour

// Bounds on what a registration may hold.
const (
	MinPassword = 8    // characters
	MaxPassword = 1024 // bytes: argon2 would hash more, but nobody types it
	MaxName     = 100  // characters
	MaxEmail    = 254  // bytes, RFC 5321's path limit
)

// Users serves the users service's routes:
//
//	POST /users                 register: {"email","password","name"} -> 201 {"id","email","name"}
//	POST /login                 {"email","password"} -> 200 {"access_token","token_type","expires_in"}
//	GET  /users/me              (bearer) the caller
//	GET  /users/{id}            (bearer) the caller, or anyone for an admin; 404 otherwise
//	GET  /.well-known/jwks.json the public key that verifies its tokens
//	POST /oauth/token           a service's own token (client credentials, see Client)
type Users struct {
	store    Store
	key      ed25519.PrivateKey
	kid      string
	jwks     []byte
	params   PasswordParams
	verifier *shopauth.Verifier
	log      *slog.Logger
	dummy    string // a hash to check unknown emails against, so they cost the same
	clients  map[string]client
}

// Option configures New.
type Option func(*Users)

// WithPasswordParams sets argon2id's cost for new hashes. The default is
// DefaultPasswordParams.
func WithPasswordParams(p PasswordParams) Option { return func(u *Users) { u.params = p } }

// New mounts the users routes on svc, with users kept in store and tokens
// signed by key.
func New(svc *service.Service, store Store, key ed25519.PrivateKey, opts ...Option) (*Users, error) {
	if svc == nil || store == nil || len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("users: New needs a service, a store and an Ed25519 key")
	}
	u := &Users{store: store, key: key, params: DefaultPasswordParams, log: svc.Logger(), clients: map[string]client{}}
	for _, o := range opts {
		o(u)
	}
	pub := key.Public().(ed25519.PublicKey)
	u.kid = KeyID(pub)
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: u.kid, USE: jwkset.UseSig}})
	if err != nil {
		return nil, fmt.Errorf("users: jwks: %w", err)
	}
	if u.jwks, err = json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}}); err != nil {
		return nil, fmt.Errorf("users: jwks: %w", err)
	}
	// Its own tokens it checks with its own key: no call to itself.
	if u.verifier, err = shopauth.NewStaticVerifier(u.kid, pub); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	u.dummy = HashPassword("not a password anyone has", u.params)

	authed := shopauth.Require(u.verifier)
	svc.HandleFunc("POST /users", u.register)
	svc.HandleFunc("POST /login", u.login)
	svc.Handle("GET /users/me", authed(http.HandlerFunc(u.me)))
	svc.Handle("GET /users/{id}", authed(http.HandlerFunc(u.get)))
	svc.HandleFunc("GET /.well-known/jwks.json", u.serveJWKS)
	svc.HandleFunc("POST /oauth/token", u.token)
	return u, nil
}

type userJSON struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

func view(u User) userJSON { return userJSON{ID: u.ID, Email: u.Email, Name: u.Name} }

// Registration is what a new user gives.
type Registration struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// ValidationError is a registration the rules refuse; its message says why.
type ValidationError struct{ Reason string }

// Error returns the reason, prefixed with the package.
func (e *ValidationError) Error() string { return "users: " + e.Reason }

// Register validates reg, hashes its password with p and stores the user in
// store, an admin when admin is set (the shop command seeds one). It returns
// a *ValidationError or ErrEmailTaken for what the caller must fix.
func Register(ctx context.Context, store Store, p PasswordParams, reg Registration, admin bool) (User, error) {
	email := strings.ToLower(strings.TrimSpace(reg.Email))
	name := strings.TrimSpace(reg.Name)
	addr, err := mail.ParseAddress(email)
	switch {
	case len(email) > MaxEmail || err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@'):], "."):
		return User{}, &ValidationError{"email must be an address such as ada@example.com"}
	case utf8.RuneCountInString(reg.Password) < MinPassword:
		return User{}, &ValidationError{fmt.Sprintf("password must be at least %d characters", MinPassword)}
	case len(reg.Password) > MaxPassword:
		return User{}, &ValidationError{fmt.Sprintf("password must be at most %d bytes", MaxPassword)}
	case name == "":
		return User{}, &ValidationError{"name is required"}
	case utf8.RuneCountInString(name) > MaxName:
		return User{}, &ValidationError{fmt.Sprintf("name must be at most %d characters", MaxName)}
	}
	usr := User{ID: ids.New("u"), Email: email, Name: name, Admin: admin,
		PasswordHash: HashPassword(reg.Password, p), CreatedAt: time.Now()}
	if err := store.Create(ctx, usr); err != nil {
		return User{}, err
	}
	return usr, nil
}

func (u *Users) register(w http.ResponseWriter, r *http.Request) {
	var in Registration
	if service.DecodeJSON(w, r, &in) != nil {
		return
	}
	usr, err := Register(r.Context(), u.store, u.params, in, false)
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		web.Fail(w, r, http.StatusBadRequest, verr.Reason)
	case errors.Is(err, ErrEmailTaken):
		web.Fail(w, r, http.StatusConflict, "a user with this email is registered already")
	case err != nil:
		web.Internal(w, r, u.log, err)
	default:
		w.Header().Set("Location", "/users/"+usr.ID)
		_ = service.WriteJSON(w, http.StatusCreated, view(usr))
	}
}

type tokenJSON struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func (u *Users) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if service.DecodeJSON(w, r, &in) != nil {
		return
	}
	if len(in.Password) > MaxPassword {
		web.Fail(w, r, http.StatusUnauthorized, "wrong email or password")
		return
	}
	usr, err := u.store.ByEmail(r.Context(), strings.TrimSpace(in.Email))
	hash := usr.PasswordHash
	switch {
	case errors.Is(err, ErrNotFound):
		hash = u.dummy // same work as a real check, so timing does not tell which emails exist
	case err != nil:
		web.Internal(w, r, u.log, err)
		return
	}
	ok, cerr := CheckPassword(hash, in.Password)
	if cerr != nil {
		web.Internal(w, r, u.log, cerr)
		return
	}
	if err != nil || !ok {
		web.Fail(w, r, http.StatusUnauthorized, "wrong email or password")
		return
	}
	tok, err := u.Token(usr)
	if err != nil {
		web.Internal(w, r, u.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store") // RFC 6749 section 5.1
	_ = service.WriteJSON(w, http.StatusOK, tokenJSON{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(TokenTTL / time.Second)})
}

// Token returns a signed access token for usr: EdDSA, iss shop-users, aud shop,
// sub the user's id, scope "admin" for an admin, valid for TokenTTL.
func (u *Users) Token(usr User) (string, error) {
	scopes := ""
	if usr.Admin {
		scopes = shopauth.AdminScope
	}
	return u.sign(usr.ID, scopes)
}

func (u *Users) me(w http.ResponseWriter, r *http.Request) {
	c, _ := shopauth.FromContext(r.Context())
	u.write(w, r, c.Subject)
}

func (u *Users) get(w http.ResponseWriter, r *http.Request) {
	c, _ := shopauth.FromContext(r.Context())
	id := r.PathValue("id")
	if id != c.Subject && !c.HasScope(shopauth.AdminScope) {
		// 404, not 403: whether another user exists is not the caller's business.
		web.Fail(w, r, http.StatusNotFound, "no user "+id)
		return
	}
	u.write(w, r, id)
}

func (u *Users) write(w http.ResponseWriter, r *http.Request, id string) {
	usr, err := u.store.ByID(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		web.Fail(w, r, http.StatusNotFound, "no user "+id)
	case err != nil:
		web.Internal(w, r, u.log, err)
	default:
		_ = service.WriteJSON(w, http.StatusOK, view(usr))
	}
}

func (u *Users) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(u.jwks)
}

// Close releases the verifier.
func (u *Users) Close() error { return u.verifier.Close() }
