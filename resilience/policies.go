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

// Defaults of the smaller policies; see each constructor for its source.
const (
	defaultTimeout            = 15 * time.Second
	defaultBulkhead           = 1024
	defaultThrottleRate       = 0.5
	defaultThrottleMinExec    = 20
	defaultThrottlePeriod     = 2 * time.Minute
	defaultThrottleMaxRejects = 0.9
)

// NewTimeout returns failsafe-go's timeout policy: an attempt that has not
// produced a response (its headers) within d is canceled and fails with
// [timeout.ErrExceeded], which [IsFailure] counts as a failure, so a retry
// policy outside the timeout retries it. Reading the body is not limited: the
// attempt's context stays live until the body is closed. d <= 0 means 15 s,
// Envoy's default route timeout. The caller's context deadline still bounds
// all attempts together. Place it innermost, so that it times each attempt:
// Transport(next, NewRetry(), NewCircuitBreaker(), NewTimeout(d)). The policy is
// safe for concurrent use.
func NewTimeout(d time.Duration) timeout.Timeout[*http.Response] {
	if d <= 0 {
		d = defaultTimeout
	}
	return timeout.New[*http.Response](d)
}

// NewBulkhead returns failsafe-go's bulkhead: at most maxConcurrency executions
// run at once; another one waits up to maxWait for a slot and then fails with
// [bulkhead.ErrFull], which passes through unchanged and is not a failure for
// [IsFailure]. maxConcurrency == 0 means 1024, Envoy's default max_requests per
// cluster; maxWait <= 0 means no waiting (Envoy queues nothing either once its
// pending limit is reached). The bulkhead is safe for concurrent use; share one
// per called service.
func NewBulkhead(maxConcurrency uint, maxWait time.Duration) bulkhead.Bulkhead[*http.Response] {
	if maxConcurrency == 0 {
		maxConcurrency = defaultBulkhead
	}
	return bulkhead.NewBuilder[*http.Response](maxConcurrency).WithMaxWaitTime(max(maxWait, 0)).Build()
}

// NewRateLimiter returns failsafe-go's smooth rate limiter: executions are
// spaced 1/rps apart, and up to burst executions beyond the rate wait for
// their slot (at most burst/rps) instead of being rejected; the rest fail at
// once with [ratelimiter.ErrExceeded], which passes through unchanged. Smooth
// rather than bursty because a client-side limit exists to protect the server,
// which is better served by an even rate than by failsafe's bursty limiter,
// which lets a whole second's permits through at once at each window's start.
// rps == 0 means no limit; burst == 0 means no waiting. The limiter is safe
// for concurrent use.
func NewRateLimiter(rps uint, burst uint) ratelimiter.RateLimiter[*http.Response] {
	interval := time.Nanosecond // rps == 0: a billion a second is no limit
	if rps > 0 {
		interval = max(time.Second/time.Duration(rps), time.Nanosecond)
	}
	maxWait := time.Duration(math.MaxInt64)
	if burst < uint(math.MaxInt64/interval) {
		maxWait = time.Duration(burst) * interval
	}
	return ratelimiter.NewSmoothBuilderWithMaxRate[*http.Response](interval).
		WithMaxWaitTime(maxWait).
		Build()
}

// ThrottlerOption configures [NewAdaptiveThrottler].
type ThrottlerOption func(*throttlerConfig)

type throttlerConfig struct {
	rate          float64
	minExecutions uint
	period        time.Duration
	maxRejection  float64
}

// WithThrottleFailureRate sets when the throttler starts rejecting: once more
// than rate (0 to 1) of the last period's executions failed, and there were at
// least minExecutions of them. The defaults are 0.5 over 2 minutes, the Google
// SRE book's K = 2 ("accept twice as many requests as the backend accepts",
// over "the last two minutes"), and 20 executions, pier's floor so that a
// handful of failures on a quiet client do not throttle it. A rate outside
// (0, 1), a zero minExecutions or a period <= 0 each mean its default.
func WithThrottleFailureRate(rate float64, minExecutions uint, period time.Duration) ThrottlerOption {
	return func(c *throttlerConfig) {
		if rate > 0 && rate < 1 {
			c.rate = rate
		}
		if minExecutions > 0 {
			c.minExecutions = minExecutions
		}
		if period > 0 {
			c.period = period
		}
	}
}

// WithMaxRejectionRate caps the share of executions the throttler rejects, so
// that some always reach the server and notice its recovery. The default is
// 0.9, failsafe-go's. A rate outside (0, 1] means the default.
func WithMaxRejectionRate(r float64) ThrottlerOption {
	return func(c *throttlerConfig) {
		if r > 0 && r <= 1 {
			c.maxRejection = r
		}
	}
}

// NewAdaptiveThrottler returns failsafe-go's adaptive throttler, the client-side
// throttling of the Google SRE book ("Handling Overload"): it tracks how many of
// its recent executions failed by [IsFailure] and rejects new ones locally, with
// probability max(0, (requests - K x accepts) / (requests + 1)), with
// [adaptivethrottler.ErrExceeded], which passes through unchanged. It spares an
// overloaded service the cost of refusing requests. By default K = 2 over 2
// minutes, from at least 20 executions, rejecting at most 90%. The throttler is
// safe for concurrent use; share one per called service.
func NewAdaptiveThrottler(opts ...ThrottlerOption) adaptivethrottler.AdaptiveThrottler[*http.Response] {
	c := throttlerConfig{
		rate:          defaultThrottleRate,
		minExecutions: defaultThrottleMinExec,
		period:        defaultThrottlePeriod,
		maxRejection:  defaultThrottleMaxRejects,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	return adaptivethrottler.NewBuilder[*http.Response]().
		HandleIf(isFailure).
		WithFailureRateThreshold(c.rate, c.minExecutions, c.period).
		WithMaxRejectionRate(c.maxRejection).
		Build()
}
