package resilience

import (
	"net/http"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

// Circuit breaker defaults: Hystrix's (errorThresholdPercentage 50,
// requestVolumeThreshold 20, metrics.rollingStats 10 s, sleepWindow 5 s).
const (
	defaultBreakerRate          = 0.5
	defaultBreakerMinExecutions = 20
	defaultBreakerPeriod        = 10 * time.Second
	defaultBreakerOpenDelay     = 5 * time.Second
	defaultBreakerHalfOpen      = 3
)

// BreakerOption configures [NewCircuitBreaker].
type BreakerOption func(*breakerConfig)

type breakerConfig struct {
	rate          float64
	minExecutions uint
	period        time.Duration
	openDelay     time.Duration
	halfOpen      uint
	onStateChange func(circuitbreaker.StateChangedEvent)
}

// WithFailureRate sets when the closed breaker opens: when at least rate (0 to
// 1) of the executions in the last period failed, and there were at least
// minExecutions of them. The defaults are 50% of at least 20 executions in 10 s,
// Hystrix's defaults: a rate, unlike a count of consecutive failures, does not
// open on a short burst under heavy traffic, and the volume floor keeps a quiet
// service from opening on two bad calls. The window slides in 10 slices. A rate
// outside (0, 1], a zero minExecutions or a period <= 0 each mean its default.
func WithFailureRate(rate float64, minExecutions uint, period time.Duration) BreakerOption {
	return func(c *breakerConfig) {
		if rate > 0 && rate <= 1 {
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

// WithOpenDelay sets how long the breaker stays open, rejecting every execution
// with [circuitbreaker.ErrOpen], before it lets trial executions through. The
// default is 5 s, Hystrix's sleepWindow: long enough for an overloaded service
// to shed its queue, short enough that a recovered one is used again quickly.
// d <= 0 means the default.
func WithOpenDelay(d time.Duration) BreakerOption {
	return func(c *breakerConfig) {
		if d > 0 {
			c.openDelay = d
		}
	}
}

// WithHalfOpenSuccesses sets how many trial executions the half-open breaker
// lets through, and how many of them must succeed, in a row, to close it; the
// first failure opens it again. The default is 3 (Hystrix tries 1, which a
// single lucky call can fool; resilience4j permits 10). n == 0 means the
// default.
func WithHalfOpenSuccesses(n uint) BreakerOption {
	return func(c *breakerConfig) {
		if n > 0 {
			c.halfOpen = n
		}
	}
}

// WithOnStateChange registers fn to be called on every state change (closed,
// open, half-open): a hook for breaker-state metrics and logs. fn runs on the
// goroutine whose execution changed the state, so it must be quick. Each use
// adds a hook, run in the order given, so a caller's hook and one added by the
// discovery client's metrics both run. The default is no hook.
func WithOnStateChange(fn func(circuitbreaker.StateChangedEvent)) BreakerOption {
	return func(c *breakerConfig) { c.onStateChange = chain(c.onStateChange, fn) }
}

// NewCircuitBreaker returns failsafe-go's circuit breaker for one called
// service, classifying outcomes with [IsFailure]: by default it opens when 50% of
// at least 20 executions in 10 s failed, stays open 5 s, then lets 3 trial
// executions through and closes after 3 successes. A 404, a 500, a caller's
// cancellation or a failsafe rejection is never a failure (the breaker counts it
// as a success). While open it fails executions with [circuitbreaker.ErrOpen],
// which passes through [Transport] unchanged.
//
// Put it inside the retry policy, so that it sees every attempt and an open
// breaker ends the retries at once: Transport(next, NewRetry(),
// NewCircuitBreaker(), NewTimeout(d)). The breaker is safe for concurrent use;
// share one per called service.
func NewCircuitBreaker(opts ...BreakerOption) circuitbreaker.CircuitBreaker[*http.Response] {
	c := breakerConfig{
		rate:          defaultBreakerRate,
		minExecutions: defaultBreakerMinExecutions,
		period:        defaultBreakerPeriod,
		openDelay:     defaultBreakerOpenDelay,
		halfOpen:      defaultBreakerHalfOpen,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	b := circuitbreaker.NewBuilder[*http.Response]().
		HandleIf(isFailure).
		WithFailureRateThreshold(c.rate, c.minExecutions, c.period).
		WithDelay(c.openDelay).
		WithSuccessThreshold(c.halfOpen)
	if c.onStateChange != nil {
		b = b.OnStateChanged(c.onStateChange)
	}
	return b.Build()
}
