package idempotency_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pier-go/pier/idempotency"
)

// callerKey is the context key under which verified stands in for an
// authentication middleware: it puts the caller named in X-Test-Caller into
// the request's context, as auth.Require puts the token's claims.
type callerKey struct{}

func verified(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Header["X-Test-Caller"]; ok {
			r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c[0]))
		}
		next.ServeHTTP(w, r)
	})
}

// callerOf is the hook a Service passes to WithCallerScope.
func callerOf(r *http.Request) (string, bool) {
	c, ok := r.Context().Value(callerKey{}).(string)
	return c, ok
}

// keyedAs sends POST path with body, Idempotency-Key k and, unless caller is
// empty, the test's caller header, through h.
func keyedAs(h http.Handler, caller, path, k, body string) idemAnswer {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set(idempotency.Header, k)
	if caller != "" {
		req.Header.Set("X-Test-Caller", caller)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return idemAnswer{w.Code, w.Header(), w.Body.String()}
}

// TestIdempotencyCallerCannotReplayAnotherCallersAnswer: the default scope
// (method and path) leaves the caller out, so a second caller who sends the
// same key and request gets the first caller's answer. WithCallerScope puts
// the caller in the scope; without it the sharing is what the documentation
// says it is.
func TestIdempotencyCallerCannotReplayAnotherCallersAnswer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		opts      []idempotency.Option
		wantShare bool
	}{
		{"default scope shares", nil, true},
		{"caller scope", []idempotency.Option{idempotency.WithCallerScope(callerOf)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var runs atomic.Int64
			h := verified(mw(t, nil, tt.opts...)(createOrder(&runs)))
			ada := keyedAs(h, "ada", "/orders", "k", `{"card":"ada's"}`)
			bob := keyedAs(h, "bob", "/orders", "k", `{"card":"ada's"}`)
			adaAgain := keyedAs(h, "ada", "/orders", "k", `{"card":"ada's"}`)
			if !adaAgain.replayed() || adaAgain.body != ada.body {
				t.Fatalf("ada's repeat = %q replayed=%v, want her first answer %q replayed", adaAgain.body, adaAgain.replayed(), ada.body)
			}
			if shared := bob.replayed() && bob.body == ada.body; shared != tt.wantShare {
				t.Fatalf("bob got ada's answer: %v, want %v (ran %d times)", shared, tt.wantShare, runs.Load())
			}
			if want := map[bool]int64{true: 1, false: 2}[tt.wantShare]; runs.Load() != want {
				t.Fatalf("handler ran %d times, want %d", runs.Load(), want)
			}
		})
	}
}

// TestIdempotencyCallerCannotForgeAnotherCallersScope: a caller whose name
// holds what separates it from the scope must not land in another caller's
// scope. Naively joined with a space, caller "a b" on scope "POST" and caller
// "a" on scope "b POST" are both "a b POST".
func TestIdempotencyCallerCannotForgeAnotherCallersScope(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	scope := idempotency.WithScope(func(r *http.Request) string { return r.Header.Get("X-Test-Scope") })
	h := verified(mw(t, nil, scope, idempotency.WithCallerScope(callerOf))(createOrder(&runs)))
	send := func(caller, scope string) idemAnswer {
		req := httptest.NewRequest("POST", "/orders", strings.NewReader("tea"))
		req.Header.Set(idempotency.Header, "k")
		req.Header.Set("X-Test-Caller", caller)
		req.Header.Set("X-Test-Scope", scope)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return idemAnswer{w.Code, w.Header(), w.Body.String()}
	}
	victim := send("a b", "POST")
	forger := send("a", "b POST")
	if forger.replayed() || forger.body == victim.body || runs.Load() != 2 {
		t.Fatalf("forged scope got %q replayed=%v after %d runs, want its own answer", forger.body, forger.replayed(), runs.Load())
	}
}

// TestIdempotencyCallerScopeRefusesAnonymousKeys: with WithCallerScope, a
// keyed request that reaches the middleware without a caller is refused before
// the handler runs, rather than shared among all anonymous callers; a request
// without a key passes.
func TestIdempotencyCallerScopeRefusesAnonymousKeys(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	h := verified(mw(t, nil, idempotency.WithCallerScope(callerOf))(createOrder(&runs)))
	a := keyedAs(h, "", "/orders", "k", "tea")
	wantProblem(t, a, http.StatusUnauthorized, "a request with an Idempotency-Key needs an authenticated caller")
	if got := a.header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("WWW-Authenticate %q, want Bearer", got)
	}
	if runs.Load() != 0 {
		t.Fatalf("handler ran %d times for an anonymous keyed request, want 0", runs.Load())
	}
	req := httptest.NewRequest("POST", "/orders", strings.NewReader("tea"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusCreated || runs.Load() != 1 {
		t.Fatalf("anonymous request without a key = %d after %d runs, want 201 from the handler", w.Code, runs.Load())
	}
}
