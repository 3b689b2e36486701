package auth

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pier-go/pier/problem"
)

// ScopeRule says which scopes a token must grant: any of a list ([AnyScope]) or
// all of it ([AllScopes]). Scopes are compared exactly. The zero ScopeRule is
// invalid: [Check] returns an error for it and [Require] answers 500. A
// ScopeRule does not change once made and may be shared between goroutines.
type ScopeRule struct {
	scopes []string
	all    bool
	err    error
}

// AnyScope returns a rule satisfied by a token that grants at least one of
// scopes. scopes must be non-empty RFC 6749 scope tokens (printable ASCII
// without space, " and \); otherwise the rule is invalid.
func AnyScope(scopes ...string) ScopeRule { return newRule(scopes, false) }

// AllScopes returns a rule satisfied by a token that grants every one of
// scopes. scopes must be non-empty RFC 6749 scope tokens; otherwise the rule is
// invalid.
func AllScopes(scopes ...string) ScopeRule { return newRule(scopes, true) }

func newRule(scopes []string, all bool) ScopeRule {
	r := ScopeRule{scopes: slices.Clone(scopes), all: all}
	if len(scopes) == 0 {
		r.err = errors.New("auth: scope rule without scopes")
	}
	for _, s := range scopes {
		if !isScopeToken(s) {
			r.err = fmt.Errorf("auth: scope rule: %q is not a scope token", s)
			break
		}
	}
	return r
}

// isScopeToken reports whether s is an RFC 6749 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// String describes the rule: "any of a b" or "all of a b".
func (r ScopeRule) String() string {
	if r.all {
		return "all of " + strings.Join(r.scopes, " ")
	}
	return "any of " + strings.Join(r.scopes, " ")
}

// Err returns why the rule is invalid: it has no scopes, or one of them is not
// an RFC 6749 scope token. It returns nil for a valid rule. [Require] and
// [Check] refuse an invalid rule; Err lets a caller refuse it earlier, when it
// reads its configuration.
func (r ScopeRule) Err() error {
	if r.err == nil && len(r.scopes) == 0 {
		return errors.New("auth: zero scope rule")
	}
	return r.err
}

// Check returns nil when c grants the scopes rule asks for, an [*Error] with
// [ReasonScope] when it does not (or c is nil), and another error when rule is
// invalid.
func Check(c *Claims, rule ScopeRule) error {
	if err := rule.Err(); err != nil {
		return err
	}
	if c == nil {
		return fail(ReasonScope, errors.New("no claims"))
	}
	ok := rule.all
	for _, s := range rule.scopes {
		has := c.HasScope(s)
		if rule.all && !has {
			ok = false
			break
		}
		if !rule.all && has {
			ok = true
			break
		}
	}
	if !ok {
		return fail(ReasonScope, fmt.Errorf("token grants %q, rule wants %s", c.Scopes, rule))
	}
	return nil
}

// RequireOption configures [Require].
type RequireOption func(*requireConfig)

type requireConfig struct {
	rules     []ScopeRule
	onFailure func(*http.Request, *Error)
	err       error
}

// WithScopes makes [Require] answer 403 to a valid token that does not satisfy
// rule. Given more than once, every rule must be satisfied. The default is no
// scope rule: any valid token passes.
func WithScopes(rule ScopeRule) RequireOption {
	return func(c *requireConfig) {
		if err := rule.Err(); err != nil && c.err == nil {
			c.err = err
		}
		c.rules = append(c.rules, rule)
	}
}

// WithOnFailure registers fn to be called with every refused request and the
// reason, before the answer is written: a hook for metrics and logs. Given more
// than once, each fn is called in order. The default is no hook.
func WithOnFailure(fn func(r *http.Request, err *Error)) RequireOption {
	return func(c *requireConfig) {
		if fn == nil {
			if c.err == nil {
				c.err = errors.New("auth: nil failure hook")
			}
			return
		}
		if prev := c.onFailure; prev != nil {
			c.onFailure = func(r *http.Request, err *Error) { prev(r, err); fn(r, err) }
		} else {
			c.onFailure = fn
		}
	}
}

// Require returns middleware that lets a request through only with a bearer
// token v accepts (see [Verifier.VerifyRequest]) and that satisfies the
// [WithScopes] rules. The token's [Claims] reach the handler through the
// request's context ([FromContext]).
//
// A request without a token, or with a token v refuses, gets 401 with an RFC
// 9457 application/problem+json body and, per RFC 6750, "WWW-Authenticate:
// Bearer" (when no bearer token was sent) or `Bearer error="invalid_token"`. A
// token without the scopes gets 403 with `Bearer error="insufficient_scope",
// scope="..."`. The problem's detail says which check failed, never with key
// material, addresses or the token; its "reason" member is the [Reason].
//
// Require cannot return an error, so a nil v, a nil option or an invalid
// [ScopeRule] make the middleware fail closed: every request gets 500 and no
// request reaches the handler.
func Require(v *Verifier, opts ...RequireOption) func(http.Handler) http.Handler {
	var cfg requireConfig
	for _, o := range opts {
		if o == nil {
			cfg.err = errors.New("auth: nil option")
			break
		}
		o(&cfg)
	}
	if v == nil && cfg.err == nil {
		cfg.err = errors.New("auth: nil Verifier")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cfg.err != nil {
				problem.Write(w, r, problem.Problem{Status: http.StatusInternalServerError,
					Detail: "authentication is misconfigured on this server"})
				return
			}
			c, err := v.VerifyRequest(r)
			if err != nil {
				e, ok := errors.AsType[*Error](err)
				if !ok { // not reached: VerifyRequest returns only *Error
					e = fail(ReasonMalformed, err)
				}
				refuse(w, r, e, cfg)
				return
			}
			for _, rule := range cfg.rules {
				if err := Check(c, rule); err != nil {
					e, _ := errors.AsType[*Error](err) // rules were validated above
					refuse(w, r, e, cfg, rule)
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
		})
	}
}

func refuse(w http.ResponseWriter, r *http.Request, e *Error, cfg requireConfig, rule ...ScopeRule) {
	if cfg.onFailure != nil {
		cfg.onFailure(r, e)
	}
	status := http.StatusUnauthorized
	challenge := `Bearer error="invalid_token"`
	switch {
	case e.Reason == ReasonMissing:
		challenge = "Bearer"
	case e.Reason == ReasonScope:
		status = http.StatusForbidden
		challenge = `Bearer error="insufficient_scope"`
		if len(rule) > 0 {
			challenge += `, scope="` + strings.Join(rule[0].scopes, " ") + `"`
		}
	}
	w.Header().Set("WWW-Authenticate", challenge)
	detail := details(e.Reason)
	if len(rule) > 0 {
		detail += ": " + rule[0].String()
	}
	problem.Write(w, r, problem.Problem{Status: status, Detail: detail,
		Extra: map[string]any{"reason": string(e.Reason)}})
}

// details are the client-facing explanations: fixed texts, so nothing from the
// token, the keys or the JWKS address reaches the client.
func details(r Reason) string {
	switch r {
	case ReasonMissing:
		return "this resource needs a bearer token in the Authorization header"
	case ReasonMalformed:
		return "the bearer token is malformed or lacks a required claim"
	case ReasonTooLarge:
		return fmt.Sprintf("the bearer token is larger than %d bytes", MaxTokenSize)
	case ReasonAlgorithm:
		return "the token's signing algorithm is not accepted"
	case ReasonSignature:
		return "the token's signature does not verify"
	case ReasonUnknownKey:
		return "the token's signing key is unknown"
	case ReasonExpired:
		return "the token has expired"
	case ReasonNotYetValid:
		return "the token is not valid yet"
	case ReasonIssuer:
		return "the token's issuer is not accepted"
	case ReasonAudience:
		return "the token is not meant for this audience"
	case ReasonScope:
		return "the token lacks the scope this resource needs"
	case ReasonHeader:
		return "the request needs exactly one Authorization header, and a token header without jku, jwk, x5u or crit"
	}
	return "the bearer token is refused"
}
