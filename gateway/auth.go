package gateway

import (
	"errors"
	"net/http"
	"strings"

	"github.com/pier-go/pier/auth"
)

// WithVerifier sets the verifier of bearer tokens, which every route whose
// Auth is [AuthToken] (the default) needs: New fails without it when such a
// route exists. The gateway does not close it. There is no default.
func WithVerifier(v *auth.Verifier) Option {
	return func(c *config) error {
		if v == nil {
			return errors.New("WithVerifier: nil verifier")
		}
		c.auth = &authHook{
			compile: func(scopes []string, all bool) any {
				switch {
				case len(scopes) == 0:
					return nil
				case all:
					return auth.AllScopes(scopes...)
				default:
					return auth.AnyScope(scopes...)
				}
			},
			verify: func(r *http.Request, rt *route) (*http.Request, string, *authFailure) {
				claims, err := v.VerifyRequest(r)
				if err == nil {
					if rule, ok := rt.authRule.(auth.ScopeRule); ok {
						err = auth.Check(claims, rule)
					}
				}
				if err != nil {
					return nil, "", failureOf(err, rt)
				}
				return r.WithContext(auth.NewContext(r.Context(), claims)), claims.Subject, nil
			},
		}
		return nil
	}
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
