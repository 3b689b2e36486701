// Package resilience gives pier's HTTP clients and servers failsafe-go policies
// with HTTP defaults, one failure classifier, a policy-aware RoundTripper and
// server-side load shedding.
//
// It wraps failsafe-go rather than abstracting it: every constructor returns
// failsafe's own policy type, [Transport] accepts any
// failsafe.Policy[*http.Response] beside them, and failsafe's errors
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
//   - [NewRetry]: 2 retries, only on failures, full-jitter exponential backoff
//     from 25 ms (Envoy) to 1 s (gRPC A6's algorithm, AWS "Exponential Backoff
//     and Jitter"); Retry-After honoured up to 10 s; the last real response is
//     returned when retries run out.
//   - [NewBudget]: retries and hedges at most 20% of executions in flight, with 3
//     always allowed (Envoy's retry budget; Finagle's RetryBudget).
//   - [NewCircuitBreaker]: opens at 50% failures of at least 20 executions in
//     10 s, stays open 5 s, closes after 3 successful trials (Hystrix).
//   - [NewTimeout]: 15 s per attempt unless given (Envoy's route timeout).
//   - [NewHedge]: 1 hedge after the given delay, or after the recent p95
//     latency ("The Tail at Scale").
//   - [NewBulkhead]: 1024 concurrent executions (Envoy's max_requests).
//   - [NewRateLimiter]: smooth spacing at the given rate.
//   - [NewAdaptiveThrottler]: client-side throttling with K = 2 over 2 minutes
//     (Google SRE book, "Handling Overload").
//   - [Shed]: failsafe's adaptive concurrency limit, 1 to 200 starting at 20;
//     503 with Retry-After: 1 and a problem+json body beyond it.
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
//		fallback, resilience.NewRetry(), resilience.NewCircuitBreaker(), resilience.NewTimeout(2*time.Second))
//
// Retry and hedge policies, whoever built them, apply only to idempotent
// requests with replayable bodies; everything else is sent once through the
// remaining policies. Per-attempt logic (choosing an instance, per-instance
// breakers) belongs in the next RoundTripper: Transport calls it once per
// attempt, with a request whose context derives from the caller's.
package resilience
