package resilience

import (
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
)

// Retry defaults; see NewRetryBuilder and RetryDelay for their sources.
const (
	defaultMaxRetries    = 2
	defaultBackoffBase   = 25 * time.Millisecond
	defaultBackoffMax    = time.Second
	defaultMaxRetryAfter = 10 * time.Second

	// drainLimit bounds how much of a discarded response body is read so that
	// its connection can be reused; past it the connection is closed instead.
	// net/http's Client reads at most 2 KiB of a redirect's body for the same
	// reason; problem+json error bodies are well under 4 KiB.
	drainLimit = 4 << 10
)

// NewRetryBuilder returns failsafe-go's retry policy builder configured for
// HTTP, as failsafehttp.NewRetryPolicyBuilder is, with pier's defaults:
//
//   - HandleIf([IsFailure]): an attempt is retried only when it failed, so
//     never after a caller's cancellation, a 404 or a 500, nor after a failsafe
//     rejection such as [circuitbreaker.ErrOpen];
//   - WithMaxRetries(2): 3 attempts, failsafe-go's default, the DESIGN's "at
//     most 2 retries", well inside gRPC A6's cap of 5 attempts (Envoy's
//     default is 1);
//   - WithDelayFunc([RetryDelay](25 ms, 1 s)): full-jitter exponential backoff,
//     or the delay a Retry-After asks for;
//   - a Retry-After (on a 429 or 503) longer than 10 s, or longer than the
//     caller's deadline leaves, aborts the retries: the caller gets that
//     response, header included, at once;
//   - ReturnLastFailure: when the retries run out the caller gets the last
//     real outcome, such as the final 503, not a retrypolicy.ExceededError.
//
// Tune it with failsafe's own builder methods, then Build: WithMaxRetries,
// WithBudget (a budget from [NewBudgetBuilder], shared by every policy calling
// one service; a refused retry fails the call with [budget.ErrExceeded]),
// OnRetry, OnRetryScheduled. Two things failsafe's builder cannot express are
// pier's additions:
//
//   - the backoff is full jitter, which failsafe's WithJitterFactor is not, and
//     which its jitter would also apply to a Retry-After delay: change it with
//     WithDelayFunc(RetryDelay(base, max)), since a DelayFunc takes precedence
//     over WithBackoff and WithDelay;
//   - the Retry-After cap is an AbortIf condition (failsafehttp.DelayFunc
//     honours any Retry-After, and overflows past 292 years). Abort conditions
//     add up, so a caller can lower the cap with AbortIf of its own, not raise
//     it.
//
// Retrying is only safe for idempotent requests with replayable bodies:
// [Transport] applies the built policy to those alone. The builder is not safe
// for concurrent use; the policy it builds is, and is meant to be built once
// and shared.
func NewRetryBuilder() retrypolicy.Builder[*http.Response] {
	// failsafehttp.NewRetryPolicyBuilder is not the base: its classifier retries
	// every 5xx but 501, and failsafe ORs classifiers, so ours could not narrow it.
	return retrypolicy.NewBuilder[*http.Response]().
		HandleIf(isFailure).
		AbortIf(retryAfterTooLong).
		ReturnLastFailure().
		WithMaxRetries(defaultMaxRetries).
		WithDelayFunc(RetryDelay(defaultBackoffBase, defaultBackoffMax))
}

// RetryDelay returns the delay function [NewRetryBuilder] uses, for
// failsafe's WithDelayFunc: the delay a 429's or 503's Retry-After asks for,
// when it has one of at most 10 s; otherwise exponential backoff with full
// jitter: before retry n (counting from 0) a random duration in
// [0, min(max, base*2^n)], as gRPC A6 specifies and as the AWS Architecture
// Blog's "Exponential Backoff and Jitter" shows spreads competing clients best.
// NewRetryBuilder's base is 25 ms, Envoy's base_interval, and its max 1 s,
// above Envoy's 250 ms (10 x base) so that more retries still spread out; with
// 2 retries the ceilings are 25 ms and 50 ms. base <= 0 means 25 ms, max <= 0
// means 1 s, and a max below base means base.
//
// Before it returns, the function reads up to 4 KiB of the response being
// discarded and closes it, so that its connection goes back to the pool during
// the wait (a retry listener's LastResult therefore has its body closed: read
// only its status and headers). It is safe for concurrent use.
func RetryDelay(base, max time.Duration) failsafe.DelayFunc[*http.Response] {
	if base <= 0 {
		base = defaultBackoffBase
	}
	if max <= 0 {
		max = defaultBackoffMax
	}
	if max < base {
		max = base
	}
	return func(exec failsafe.ExecutionAttempt[*http.Response]) time.Duration {
		resp := exec.LastResult()
		drainClose(resp)
		if s, ok := retryAfterSeconds(resp); ok && s <= maxRetryAfterSeconds {
			return time.Duration(s) * time.Second
		}
		ceiling := base
		for i := 0; i < exec.Retries() && ceiling < max; i++ {
			ceiling *= 2
		}
		return rand.N(min(ceiling, max) + 1)
	}
}

// maxRetryAfterSeconds is the longest Retry-After honoured, in whole seconds.
const maxRetryAfterSeconds = int64(defaultMaxRetryAfter / time.Second)

// retryAfterTooLong reports whether resp asks the client to wait longer than
// the policy will, or than the caller's deadline leaves. Retry-After is
// compared in whole seconds before it becomes a time.Duration, which a large
// value would overflow.
func retryAfterTooLong(resp *http.Response, _ error) bool {
	s, ok := retryAfterSeconds(resp)
	if !ok {
		return false
	}
	if s > maxRetryAfterSeconds {
		return true
	}
	d := time.Duration(s) * time.Second // s is at most the cap's seconds: no overflow
	if resp.Request != nil {
		if deadline, ok := resp.Request.Context().Deadline(); ok && time.Until(deadline) <= d {
			return true
		}
	}
	return false
}

// retryAfterSeconds returns the delay, in seconds, that a 429 or 503
// response's Retry-After asks for in its delta-seconds form (RFC 9110 section
// 10.2.3: digits only). A value too large for an int64 is math.MaxInt64: a
// very long delay, not an invalid one. failsafehttp.DelayFunc is not used: it
// multiplies the seconds into a time.Duration, which overflows past
// 9223372036 s.
func retryAfterSeconds(resp *http.Response) (int64, bool) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	v := resp.Header["Retry-After"]
	if len(v) == 0 || v[0] == "" {
		return 0, false
	}
	for i := 0; i < len(v[0]); i++ {
		if v[0][i] < '0' || v[0][i] > '9' {
			return 0, false
		}
	}
	s, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil { // digits only, so out of range: saturate
		return math.MaxInt64, true
	}
	return s, true
}

// drainClose reads a bounded amount of resp's body and closes it, so that the
// connection can carry the next request. A nil resp is ignored.
func drainClose(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	_ = resp.Body.Close()
}
