package resilience

import (
	"context"
	"errors"
	"net/http"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/adaptivethrottler"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/timeout"
)

// idempotencyKey is the header that marks a request as safe to send more than
// once, whatever its method: the server deduplicates on its value
// (draft-ietf-httpapi-idempotency-key-header; idempotency.Header, written out
// so that this package imports no other pier package). net/http's Transport
// honours it the same way.
const idempotencyKey = "Idempotency-Key"

// xIdempotencyKey is the older spelling that net/http's Transport also accepts.
const xIdempotencyKey = "X-Idempotency-Key"

// IsFailure reports whether an attempt failed in a way that is the called
// instance's fault. It is the one classifier that retries, circuit breakers,
// the adaptive throttler, outlier ejection and metrics share, so that they all
// agree on what "failed" means. resp and err are the attempt's outcome; req is
// the request the caller handed to RoundTrip (not a per-attempt copy), used to
// tell the caller's own cancellation and deadline apart from the instance's.
//
// Failures:
//   - a transport or connection error (refused, reset, EOF, TLS, DNS);
//   - a per-attempt timeout: failsafe's [timeout.ErrExceeded], and any error
//     that matches [context.DeadlineExceeded] while the caller's context is
//     still live (net/http's ResponseHeaderTimeout, a dial timeout, a deadline
//     set on the attempt's own context);
//   - the statuses 429, 502, 503 and 504.
//
// Not failures:
//   - every other status, 500 included: a 500 is a bug for that request, which a
//     retry or another instance will not fix, and a handler that panics on one
//     input must not open the breaker for every caller. A 501 and the 4xx are
//     the caller's problem;
//   - [context.Canceled] (the caller gave up, or a hedge lost the race), and any
//     error once the caller's context is done: the instance did nothing wrong;
//   - failsafe's own rejections, raised before the instance was called:
//     [circuitbreaker.ErrOpen], [bulkhead.ErrFull], [ratelimiter.ErrExceeded],
//     [budget.ErrExceeded], [adaptivethrottler.ErrExceeded] and
//     [adaptivelimiter.ErrExceeded].
//
// req may be nil, as it is inside failsafe policies, which see only the
// response and the error. IsFailure then counts an error matching
// [context.DeadlineExceeded] as a failure only when it is not a context's own
// error (a bare context.DeadlineExceeded is the caller's deadline: inside
// [Transport] the only other deadline is failsafe's timeout, which reports
// timeout.ErrExceeded). Code that sets its own per-attempt deadline should
// make timeout.ErrExceeded its cause, context.WithTimeoutCause(ctx, d,
// timeout.ErrExceeded): net/http returns a context's cause, so the attempt's
// error then counts as a timeout whichever request, if any, is passed here.
// Policies that must record every outcome, such as failsafe's circuit breaker,
// record a non-failure as a success.
//
// IsFailure is safe for concurrent use.
func IsFailure(req *http.Request, resp *http.Response, err error) bool {
	if err != nil {
		switch {
		case errors.Is(err, timeout.ErrExceeded):
			return true
		case errors.Is(err, context.Canceled):
			return false
		case req != nil && req.Context().Err() != nil:
			return false // the caller's deadline or cancellation, whatever the error's shape
		case rejected(err):
			return false
		case errors.Is(err, context.DeadlineExceeded):
			return req != nil || !isContextError(err)
		}
		return true
	}
	return resp != nil && FailureStatus(resp.StatusCode)
}

// FailureStatus reports whether an answer with status code is a failure in the
// sense of [IsFailure]: 429, 502, 503 or 504, the answers that say "not now" or
// "not this instance" and invite a retry. Every other status is the server's
// considered answer, 500 included.
func FailureStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// isFailure is IsFailure in the shape failsafe's HandleIf wants.
func isFailure(resp *http.Response, err error) bool {
	return IsFailure(nil, resp, err)
}

// rejected reports whether err is a failsafe policy refusing to run the attempt.
func rejected(err error) bool {
	return errors.Is(err, circuitbreaker.ErrOpen) ||
		errors.Is(err, bulkhead.ErrFull) ||
		errors.Is(err, ratelimiter.ErrExceeded) ||
		errors.Is(err, budget.ErrExceeded) ||
		errors.Is(err, adaptivethrottler.ErrExceeded) ||
		errors.Is(err, adaptivelimiter.ErrExceeded)
}

// isContextError reports whether err is, or wraps, a context's own error value,
// as opposed to an error that merely matches it through an Is method (net and
// net/http timeouts do that).
func isContextError(err error) bool {
	for range 32 { // bounded: a chain that unwraps to itself must not hang us
		if err == nil {
			return false
		}
		if err == context.DeadlineExceeded || err == context.Canceled {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

// Idempotent reports whether req may be sent more than once: its method is GET,
// HEAD, OPTIONS, TRACE, PUT or DELETE (RFC 9110 section 9.2.2), or it carries an
// Idempotency-Key (or X-Idempotency-Key) header. As in net/http's Transport, the
// header's presence is what counts, so a nil value marks a request idempotent
// without sending anything. An empty method means GET. Idempotent is safe for
// concurrent use.
func Idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	if _, ok := req.Header[idempotencyKey]; ok {
		return true
	}
	_, ok := req.Header[xIdempotencyKey]
	return ok
}
