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

// NewCircuitBreakerBuilder returns failsafe-go's circuit breaker builder for
// one called service, with pier's defaults:
//
//   - HandleIf([IsFailure]): a 404, a 500, a caller's cancellation or a
//     failsafe rejection is never a failure (the breaker counts it as a
//     success);
//   - WithFailureRateThreshold(0.5, 20, 10 s): the closed breaker opens when at
//     least 50% of at least 20 executions in the last 10 s failed, Hystrix's
//     defaults: a rate, unlike a count of consecutive failures, does not open
//     on a short burst under heavy traffic, and the volume floor keeps a quiet
//     service from opening on two bad calls;
//   - WithDelay(5 s): the open breaker rejects every execution with
//     [circuitbreaker.ErrOpen], which passes through [Transport] unchanged, for
//     5 s, Hystrix's sleepWindow, then lets trial executions through;
//   - WithSuccessThreshold(3): 3 trials must succeed in a row to close it; the
//     first failure opens it again (Hystrix tries 1, which a single lucky call
//     can fool; resilience4j permits 10).
//
// Tune it with failsafe's own builder methods, then Build. failsafe opens on
// the failure rate while one is set, so to open on a count instead
// (WithFailureThreshold, WithFailureThresholdPeriod) first clear the rate with
// WithFailureRateThreshold(0, 0, 0). For a client of one endpoint, put the
// breaker inside the retry policy, so that it sees every attempt and an open
// breaker ends the retries at once: Transport(next, retry, breaker, timeout).
// A client that spreads attempts over instances, as the discovery client
// does, counts requests instead, outside the retries: there one bad instance
// among good ones would open a breaker that counts attempts (see
// docs/resilience.md, "What svc.Client() does by default"). The
// builder is not safe for concurrent use; the breaker it builds is: share one
// per called service.
func NewCircuitBreakerBuilder() circuitbreaker.Builder[*http.Response] {
	return circuitbreaker.NewBuilder[*http.Response]().
		HandleIf(isFailure).
		WithFailureRateThreshold(defaultBreakerRate, defaultBreakerMinExecutions, defaultBreakerPeriod).
		WithDelay(defaultBreakerOpenDelay).
		WithSuccessThreshold(defaultBreakerHalfOpen)
}
