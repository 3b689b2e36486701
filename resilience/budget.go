package resilience

import (
	"github.com/failsafe-go/failsafe-go/budget"
)

// Budget defaults: Envoy's retry budget (budget_percent 20%,
// min_retry_concurrency 3), which is also failsafe-go's default.
const (
	defaultBudgetRate           = 0.2
	defaultBudgetMinConcurrency = 3
)

// NewBudgetBuilder returns failsafe-go's retry and hedge budget builder with
// pier's defaults, which are failsafe-go's too: a retry or hedge may start
// only while retries and hedges in flight are at most 20% of all executions in
// flight (WithMaxRate; Envoy's retry budget, budget_percent 20% of active
// requests; Finagle's RetryBudget, 20% of requests), or fewer than 3
// (WithMinConcurrency; Envoy's min_retry_concurrency). It counts concurrency,
// not totals: under a sustained outage, where every attempt fails, each round
// of retries is at most a quarter (0.2 / 0.8) of the executions that failed
// before it, so N concurrent calls with 2 retries make at most about
// N x (1 + 0.25 + 0.0625) attempts rather than 3N.
//
// A budget only works when it is shared: build one per called service (or per
// client) and pass it to the WithBudget of every retry and hedge builder that
// calls it ([NewRetryBuilder], [NewHedgeBuilder]). A refused retry fails its
// call with [budget.ErrExceeded]; a refused hedge is simply not started.
// Executions count towards the budget only as they pass through a retry or
// hedge policy that has it: [Transport] sends a request that may not be sent
// twice without those policies, so such a request takes no permit and is not
// counted. The builder is not safe for concurrent use; the budget it builds
// is.
func NewBudgetBuilder() budget.Builder {
	return budget.NewBuilder().
		WithMaxRate(defaultBudgetRate).
		WithMinConcurrency(defaultBudgetMinConcurrency)
}
