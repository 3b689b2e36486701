package gateway

import (
	"errors"
	"hash/maphash"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pier-go/pier/auth"
)

// authHook verifies tokens for the gateway: the verifier of [WithVerifier]
// and a cache of the tokens it accepted.
type authHook struct {
	v     *auth.Verifier
	cache *tokenCache // nil: every request is verified
}

// authFailure is a refused token.
type authFailure struct {
	status    int    // 401 or 403
	reason    string // the auth package's Reason, for metrics
	detail    string // the problem's detail
	challenge string // the WWW-Authenticate header (RFC 6750)
}

// WithVerifier sets the verifier of bearer tokens, which every route whose
// Auth is [AuthToken] (the default) needs: New fails without it when such a
// route exists. The gateway does not close it. There is no default.
func WithVerifier(v *auth.Verifier) Option {
	return func(c *config) error {
		if v == nil {
			return errors.New("WithVerifier: nil verifier")
		}
		c.auth = &authHook{v: v}
		return nil
	}
}

// compile turns a route's scopes into the rule verify checks, once per route
// table.
func (h *authHook) compile(scopes []string, all bool) any {
	switch {
	case len(scopes) == 0:
		return nil
	case all:
		return auth.AllScopes(scopes...)
	default:
		return auth.AnyScope(scopes...)
	}
}

// verify checks r's token and the route's scopes, and returns its claims or
// the refusal.
func (h *authHook) verify(r *http.Request, rt *route, now time.Time) (*auth.Claims, *authFailure) {
	var claims *auth.Claims
	vv := r.Header["Authorization"]
	if h.cache != nil && len(vv) == 1 {
		claims = h.cache.get(vv[0], now)
	}
	if claims == nil {
		c, err := h.v.VerifyRequest(r)
		if err != nil {
			return nil, failureOf(err, rt)
		}
		claims = c
		if h.cache != nil && len(vv) == 1 {
			h.cache.put(vv[0], c, now)
		}
	}
	if rule, ok := rt.authRule.(auth.ScopeRule); ok {
		if err := auth.Check(claims, rule); err != nil {
			return nil, failureOf(err, rt)
		}
	}
	return claims, nil
}

// failureOf turns the auth package's error into the gateway's refusal
// (RFC 6750 challenges).
func failureOf(err error, rt *route) *authFailure {
	reason := auth.ReasonMalformed
	var ae *auth.Error
	if errors.As(err, &ae) {
		reason = ae.Reason
	}
	f := &authFailure{status: http.StatusUnauthorized, reason: string(reason),
		challenge: `Bearer realm="pier", error="invalid_token"`, detail: "the bearer token is not valid (" + string(reason) + ")"}
	switch reason {
	case auth.ReasonMissing:
		f.challenge = `Bearer realm="pier"`
		f.detail = "this route needs a bearer token in the Authorization header"
	case auth.ReasonScope:
		f.status = http.StatusForbidden
		f.challenge = `Bearer realm="pier", error="insufficient_scope", scope="` + strings.Join(rt.Scopes, " ") + `"`
		which := "any of"
		if rt.AllScopes {
			which = "all of"
		}
		f.detail = "the token lacks the scopes this route needs: " + which + " " + strings.Join(rt.Scopes, ", ")
	}
	return f
}

// Defaults of the verified-token cache ([WithTokenCache]).
const (
	// DefaultTokenCacheTTL is how long a verified token is reused at most.
	DefaultTokenCacheTTL = 30 * time.Second
	// DefaultTokenCacheSize is how many verified tokens are kept at most.
	DefaultTokenCacheSize = 4096
)

// WithTokenCache sets how long the gateway reuses a token it verified, and how
// many it keeps: a request whose Authorization header is exactly one already
// verified skips the signature check until the token expires or ttl passes,
// whichever is first. The scopes are checked on every request. A key removed
// from an issuer's key set therefore stops admitting cached tokens after at
// most ttl. The defaults are [DefaultTokenCacheTTL] and
// [DefaultTokenCacheSize]; both must be positive.
func WithTokenCache(ttl time.Duration, size int) Option {
	return func(c *config) error {
		if ttl <= 0 || size <= 0 {
			return errors.New("WithTokenCache: want a positive ttl and size")
		}
		c.tokenTTL, c.tokenSize = ttl, size
		return nil
	}
}

// WithoutTokenCache verifies every request's token.
func WithoutTokenCache() Option {
	return func(c *config) error {
		c.noTokenCache = true
		return nil
	}
}

const tokenShards = 16

// tokenCache holds verified tokens, keyed by the whole Authorization value,
// in generations as the rate limiters do: bounded by size, each entry valid
// until its own deadline.
type tokenCache struct {
	ttl    time.Duration
	perGen int
	seed   maphash.Seed
	shards [tokenShards]tokenShard
}

type tokenShard struct {
	mu        sync.Mutex
	cur, prev map[string]cachedToken
}

type cachedToken struct {
	claims *auth.Claims
	until  time.Time
}

func newTokenCache(ttl time.Duration, size int) *tokenCache {
	c := &tokenCache{ttl: ttl, perGen: max(1, size/tokenShards/2), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].cur = make(map[string]cachedToken)
	}
	return c
}

func (c *tokenCache) get(key string, now time.Time) *auth.Claims {
	sh := &c.shards[maphash.String(c.seed, key)%tokenShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.cur[key]
	if !ok {
		e, ok = sh.prev[key]
	}
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.claims
}

func (c *tokenCache) put(key string, claims *auth.Claims, now time.Time) {
	until := now.Add(c.ttl)
	if !claims.ExpiresAt.IsZero() && claims.ExpiresAt.Before(until) {
		until = claims.ExpiresAt
	}
	sh := &c.shards[maphash.String(c.seed, key)%tokenShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.cur) >= c.perGen {
		sh.prev, sh.cur = sh.cur, make(map[string]cachedToken, c.perGen)
	}
	sh.cur[key] = cachedToken{claims: claims, until: until}
}
