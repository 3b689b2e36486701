// Package resilience gives pier's HTTP clients and servers failsafe-go policies
// with HTTP defaults, one failure classifier, a policy-aware RoundTripper and
// server-side load shedding.
//
// It wraps failsafe-go rather than abstracting it: it hands out failsafe's own
// builders, preconfigured for HTTP as failsafehttp.NewRetryPolicyBuilder is, so
// a policy is tuned with the builder methods failsafe users already know and
// then built; [Transport] accepts any failsafe.Policy[*http.Response] beside
// them; and failsafe's errors
// ([circuitbreaker.ErrOpen], [budget.ErrExceeded], [timeout.ErrExceeded],
// [bulkhead.ErrFull], ...) pass through unchanged, to be matched with
// errors.Is; they become HTTP statuses only at the edge. The package imports only
// failsafe-go, net/http and the standard library.
//
// # One classifier
//
// [IsFailure] decides, for retries, breakers, the throttler, outlier ejection
// and metrics alike, whether an attempt failed through the instance's fault: a
// transport error, a per-attempt timeout, or a 429, 502, 503 or 504. Any other
// status, 500 included, is not, and neither is the caller's own cancellation or
// deadline, nor a failsafe policy's local rejection. [Idempotent] decides which
// requests may be sent more than once.
//
// # Defaults and their sources
//
//   - [NewRetryBuilder]: 2 retries, only on failures, full-jitter exponential
//     backoff from 25 ms (Envoy) to 1 s (gRPC A6's algorithm, AWS "Exponential
//     Backoff and Jitter"; [RetryDelay]); Retry-After honoured up to 10 s; the
//     last real response is returned when retries run out.
//   - [NewBudgetBuilder]: retries and hedges at most 20% of executions in
//     flight, with 3 always allowed (Envoy's retry budget; Finagle's
//     RetryBudget).
//   - [NewCircuitBreakerBuilder]: opens at 50% failures of at least 20
//     executions in 10 s, stays open 5 s, closes after 3 successful trials
//     (Hystrix).
//   - [NewTimeoutBuilder]: 15 s per attempt unless given (Envoy's route
//     timeout).
//   - [NewHedgeBuilder]: 1 hedge after the given delay, or after the recent p95
//     latency ("The Tail at Scale").
//   - [NewBulkheadBuilder]: 1024 concurrent executions (Envoy's max_requests).
//   - [NewRateLimiterBuilder]: smooth spacing at the given rate.
//   - [NewAdaptiveThrottlerBuilder]: client-side throttling with K = 2 over 2
//     minutes (Google SRE book, "Handling Overload").
//   - [Shed]: failsafe's adaptive concurrency limit, 1 to 200 starting at 20;
//     503 with Retry-After: 1 and a problem+json body beyond it.
//
// Every builder is failsafe's, so its methods change any default:
//
//	retry := resilience.NewRetryBuilder().
//		WithMaxRetries(3).
//		WithBudget(resilience.NewBudgetBuilder().Build()).
//		Build()
//
// docs/resilience.md explains each default and how to change it.
//
// # Mixing in your own policies
//
// Pass any failsafe.Policy[*http.Response] to [Transport], in the order
// failsafe.With takes them, outermost first:
//
//	fallback := fallback.NewWithResult[*http.Response](cached)
//	rt := resilience.Transport(http.DefaultTransport,
//		fallback,
//		resilience.NewRetryBuilder().Build(),
//		resilience.NewCircuitBreakerBuilder().Build(),
//		resilience.NewTimeoutBuilder(2*time.Second).Build())
//
// Retry and hedge policies, whoever built them (and policies that wrap one and
// say so with an Unwrap method), apply only to idempotent requests with
// replayable bodies; everything else is sent once through the
// remaining policies. Per-attempt logic (choosing an instance, per-instance
// breakers) belongs in the next RoundTripper: Transport calls it once per
// attempt, with a request whose context derives from the caller's.
package resilience
