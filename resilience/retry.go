package resilience

import (
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
)

// Retry defaults; see NewRetry and the options for their sources.
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

// RetryOption configures [NewRetry].
type RetryOption func(*retryConfig)

type retryConfig struct {
	maxRetries    int
	base, max     time.Duration
	maxRetryAfter time.Duration
	budget        budget.Budget
	onRetry       func(failsafe.ExecutionEvent[*http.Response])
	onScheduled   func(failsafe.ExecutionScheduledEvent[*http.Response])
}

// WithMaxRetries sets how many times a failed attempt is retried. The default is
// 2 retries (3 attempts): failsafe-go's default, the DESIGN's "at most 2
// retries", well inside gRPC A6's cap of 5 attempts (Envoy's default is 1). n <= 0
// disables retries.
func WithMaxRetries(n int) RetryOption {
	return func(c *retryConfig) { c.maxRetries = max(n, 0) }
}

// WithBackoff sets the exponential backoff with full jitter: before retry n
// (counting from 0) the policy waits a random duration in
// [0, min(max, base*2^n)], as gRPC A6 specifies and as the AWS Architecture Blog's
// "Exponential Backoff and Jitter" shows spreads competing clients best. The
// default base is 25 ms, Envoy's base_interval; the default max is 1 s, above
// Envoy's 250 ms (10 x base) so that a raised WithMaxRetries still spreads out.
// With the default 2 retries the ceilings are 25 ms and 50 ms. base <= 0 means
// the default; max < base means base.
func WithBackoff(base, max time.Duration) RetryOption {
	return func(c *retryConfig) {
		if base <= 0 {
			base = defaultBackoffBase
		}
		c.base, c.max = base, maxDuration(max, base)
	}
}

// WithMaxRetryAfter sets the longest Retry-After (on a 429 or 503) the policy
// honours. A response whose Retry-After is within it is retried after exactly
// that delay instead of the backoff; one that asks for longer, or for longer
// than the caller's deadline leaves, is not retried: the caller gets the
// response, header included, at once. The default is 10 s; d <= 0 means the
// default.
func WithMaxRetryAfter(d time.Duration) RetryOption {
	return func(c *retryConfig) {
		if d <= 0 {
			d = defaultMaxRetryAfter
		}
		c.maxRetryAfter = d
	}
}

// WithRetryBudget makes every retry take a permit from b, which caps retries
// (and hedges sharing b) to a share of the executions in flight; when b refuses,
// the call fails with [budget.ErrExceeded], unchanged. b must come from
// [NewBudget] or failsafe-go's budget package; the default is no budget, since a
// budget only works when every caller of a service shares one (the discovery
// client passes its own). A nil b means no budget.
func WithRetryBudget(b budget.Budget) RetryOption {
	return func(c *retryConfig) { c.budget = b }
}

// WithOnRetry registers fn to be called just before each retry attempt, after
// the delay: a hook for retry metrics. The event's LastResult is the response
// that was retried, with its body already closed: read only its status and
// headers. Each use adds a hook, run in the order given. The default is no hook.
func WithOnRetry(fn func(failsafe.ExecutionEvent[*http.Response])) RetryOption {
	return func(c *retryConfig) { c.onRetry = chain(c.onRetry, fn) }
}

// WithOnRetryScheduled registers fn to be called when a retry is scheduled,
// before the delay, with the delay chosen (the backoff or the Retry-After). The
// event's LastResult body is already closed. Each use adds a hook, run in the
// order given. The default is no hook.
func WithOnRetryScheduled(fn func(failsafe.ExecutionScheduledEvent[*http.Response])) RetryOption {
	return func(c *retryConfig) { c.onScheduled = chain(c.onScheduled, fn) }
}

// NewRetry returns failsafe-go's retry policy configured for HTTP:
//
//   - it retries an attempt only when [IsFailure] says it failed, so never a
//     caller's cancellation, never a 404 or a 500, never a failsafe rejection
//     such as [circuitbreaker.ErrOpen];
//   - at most 2 retries ([WithMaxRetries]), exponential backoff with full jitter
//     from 25 ms up to 1 s ([WithBackoff]);
//   - a Retry-After on a 429 or 503 replaces the backoff when it is at most 10 s
//     and fits in the caller's deadline, and stops the retries otherwise
//     ([WithMaxRetryAfter]);
//   - when the retries run out the caller gets the last real outcome, such as
//     the final 503 response, not a retrypolicy.ExceededError;
//   - with a budget ([WithRetryBudget]), a refused retry fails the call with
//     [budget.ErrExceeded], unchanged.
//
// Before scheduling a retry, the policy reads up to 4 KiB of the discarded
// response's body and closes it, so its connection goes back to the pool.
//
// Retrying is only safe for idempotent requests with replayable bodies:
// [Transport] applies the policy to those alone. The policy is safe for
// concurrent use and meant to be built once and shared.
func NewRetry(opts ...RetryOption) retrypolicy.RetryPolicy[*http.Response] {
	c := retryConfig{
		maxRetries:    defaultMaxRetries,
		base:          defaultBackoffBase,
		max:           defaultBackoffMax,
		maxRetryAfter: defaultMaxRetryAfter,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	// failsafehttp.NewRetryPolicyBuilder is not the base: its classifier retries
	// every 5xx but 501, and failsafe ORs classifiers, so ours could not narrow it.
	b := retrypolicy.NewBuilder[*http.Response]().
		HandleIf(isFailure).
		AbortIf(c.retryAfterTooLong).
		ReturnLastFailure().
		WithMaxRetries(c.maxRetries).
		WithDelayFunc(c.delay).
		OnRetryScheduled(c.scheduled)
	if c.budget != nil {
		if _, ok := c.budget.(failsafeBudget); ok { // WithBudget panics on any other kind
			b = b.WithBudget(c.budget)
		}
	}
	if c.onRetry != nil {
		b = b.OnRetry(c.onRetry)
	}
	return b.Build()
}

// failsafeBudget is the part of failsafe-go's internal budget interface that its
// retry and hedge policies type-assert a budget.Budget to.
type failsafeBudget interface {
	budget.Budget
	RecordExecution()
	ReleaseExecution()
	TryAcquirePermit() bool
	ReleasePermit()
}

// delay returns the Retry-After delay when the response has one (at most the
// cap; a longer one aborts the retries first), else a fully jittered exponential backoff. failsafe-go's own
// jitter options add or subtract a share of the delay, which is not full jitter,
// so the backoff is computed here.
func (c *retryConfig) delay(exec failsafe.ExecutionAttempt[*http.Response]) time.Duration {
	if s, ok := retryAfterSeconds(exec.LastResult()); ok && s <= c.maxRetryAfterSeconds() {
		return time.Duration(s) * time.Second
	}
	ceiling := c.base
	for i := 0; i < exec.Retries() && ceiling < c.max; i++ {
		ceiling *= 2
	}
	return rand.N(min(ceiling, c.max) + 1)
}

// retryAfterTooLong reports whether resp asks the client to wait longer than
// the policy will, or than the caller's deadline leaves. Retry-After is
// compared in whole seconds before it becomes a time.Duration, which a large
// value would overflow.
func (c *retryConfig) retryAfterTooLong(resp *http.Response, _ error) bool {
	s, ok := retryAfterSeconds(resp)
	if !ok {
		return false
	}
	if s > c.maxRetryAfterSeconds() {
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

// maxRetryAfterSeconds is the longest Retry-After honoured, in whole seconds.
func (c *retryConfig) maxRetryAfterSeconds() int64 {
	return int64(c.maxRetryAfter / time.Second)
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
	if err != nil { // digits only, so the range: saturate
		return math.MaxInt64, true
	}
	return s, true
}

// scheduled closes the response that is about to be discarded, then calls the
// user's hook.
func (c *retryConfig) scheduled(e failsafe.ExecutionScheduledEvent[*http.Response]) {
	drainClose(e.LastResult())
	if c.onScheduled != nil {
		c.onScheduled(e)
	}
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

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
