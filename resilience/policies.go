package resilience

import (
	"math"
	"net/http"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivethrottler"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/timeout"
)

// Defaults of the smaller policies; see each builder for its source.
const (
	defaultTimeout            = 15 * time.Second
	defaultBulkhead           = 1024
	defaultThrottleRate       = 0.5
	defaultThrottleMinExec    = 20
	defaultThrottlePeriod     = 2 * time.Minute
	defaultThrottleMaxRejects = 0.9
)

// NewTimeoutBuilder returns failsafe-go's timeout builder: an attempt that has
// not produced a response (its headers) within d is canceled and fails with
// [timeout.ErrExceeded], which [IsFailure] counts as a failure, so a retry
// policy outside the timeout retries it. Reading the body is not limited: the
// attempt's context stays live until the body is closed. d <= 0 means 15 s,
// Envoy's default route timeout. The caller's context deadline still bounds
// all attempts together. Place the timeout innermost, so that it times each
// attempt: Transport(next, retry, breaker, timeout). The builder is not safe
// for concurrent use; the policy it builds is.
func NewTimeoutBuilder(d time.Duration) timeout.Builder[*http.Response] {
	if d <= 0 {
		d = defaultTimeout
	}
	return timeout.NewBuilder[*http.Response](d)
}

// NewBulkheadBuilder returns failsafe-go's bulkhead builder: at most
// maxConcurrency executions run at once; another one fails at once with
// [bulkhead.ErrFull], which passes through unchanged and is not a failure for
// [IsFailure] (Envoy queues nothing either once its pending limit is reached;
// let it wait with WithMaxWaitTime). maxConcurrency == 0 means 1024, Envoy's
// default max_requests per cluster. The builder is not safe for concurrent
// use; the bulkhead it builds is: share one per called service.
func NewBulkheadBuilder(maxConcurrency uint) bulkhead.Builder[*http.Response] {
	if maxConcurrency == 0 {
		maxConcurrency = defaultBulkhead
	}
	return bulkhead.NewBuilder[*http.Response](maxConcurrency)
}

// NewRateLimiterBuilder returns failsafe-go's smooth rate limiter builder:
// executions are spaced 1/rps apart, and those beyond the rate fail at once
// with [ratelimiter.ErrExceeded], which passes through unchanged; let up to n
// of them wait for their slot instead with WithMaxWaitTime(n/rps). Smooth
// rather than bursty because a client-side limit exists to protect the server,
// which is better served by an even rate than by failsafe's bursty limiter,
// which lets a whole second's permits through at once at each window's start.
// rps == 0 means no limit. The builder is not safe for concurrent use; the
// limiter it builds is.
func NewRateLimiterBuilder(rps uint) ratelimiter.Builder[*http.Response] {
	interval := time.Nanosecond // rps == 0: a billion a second is no limit
	if rps > 0 {
		interval = max(time.Second/time.Duration(min(rps, math.MaxInt64)), time.Nanosecond)
	}
	return ratelimiter.NewSmoothBuilderWithMaxRate[*http.Response](interval)
}

// NewAdaptiveThrottlerBuilder returns failsafe-go's adaptive throttler builder,
// the client-side throttling of the Google SRE book ("Handling Overload"): the
// throttler tracks how many of its recent executions failed by [IsFailure]
// (HandleIf) and rejects new ones locally, with probability
// max(0, (requests - K x accepts) / (requests + 1)), with
// [adaptivethrottler.ErrExceeded], which passes through unchanged. It spares
// an overloaded service the cost of refusing requests. Its defaults:
//
//   - WithFailureRateThreshold(0.5, 20, 2 min): the book's K = 2 ("accept twice
//     as many requests as the backend accepts", over "the last two minutes"),
//     from at least 20 executions, pier's floor so that a handful of failures
//     on a quiet client do not throttle it;
//   - WithMaxRejectionRate(0.9), failsafe-go's: some executions always reach
//     the server and notice its recovery.
//
// The builder is not safe for concurrent use; the throttler it builds is:
// share one per called service.
func NewAdaptiveThrottlerBuilder() adaptivethrottler.Builder[*http.Response] {
	return adaptivethrottler.NewBuilder[*http.Response]().
		HandleIf(isFailure).
		WithFailureRateThreshold(defaultThrottleRate, defaultThrottleMinExec, defaultThrottlePeriod).
		WithMaxRejectionRate(defaultThrottleMaxRejects)
}
