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

// BudgetOption configures [NewBudget].
type BudgetOption func(*budgetConfig)

type budgetConfig struct {
	maxRate        float64
	minConcurrency uint
	onExceeded     func(budget.ExceededEvent)
}

// WithMaxRate sets the largest share, from 0 to 1, of the executions in flight
// that may be retries or hedges. The default is 0.2: Envoy's retry budget
// (budget_percent 20% of active requests), Finagle's RetryBudget (20% of
// requests) and, in spirit, gRPC A6's retry throttling. r <= 0 means the
// default; r > 1 means 1.
func WithMaxRate(r float64) BudgetOption {
	return func(c *budgetConfig) {
		switch {
		case r <= 0 || r != r: // r != r: NaN
			r = defaultBudgetRate
		case r > 1:
			r = 1
		}
		c.maxRate = r
	}
}

// WithMinConcurrency sets how many retries or hedges may always be in flight,
// whatever the rate says, so that a lightly loaded client can still retry. The
// default is 3: Envoy's min_retry_concurrency (Finagle's equivalent is 10
// retries a second). n == 0 means the default.
func WithMinConcurrency(n uint) BudgetOption {
	return func(c *budgetConfig) {
		if n == 0 {
			n = defaultBudgetMinConcurrency
		}
		c.minConcurrency = n
	}
}

// WithOnBudgetExceeded registers fn to be called each time the budget refuses a
// retry or a hedge: a hook for metrics. Each use adds a hook, run in the order
// given. The default is no hook.
func WithOnBudgetExceeded(fn func(budget.ExceededEvent)) BudgetOption {
	return func(c *budgetConfig) { c.onExceeded = chain(c.onExceeded, fn) }
}

// NewBudget returns failsafe-go's retry and hedge budget: a retry or hedge may
// start only while retries and hedges in flight are at most 20% of all
// executions in flight (retries included), or fewer than 3. It counts
// concurrency, not totals: under a sustained outage, where every attempt fails,
// each round of retries is at most a quarter (0.2 / 0.8) of the executions that
// failed before it, so N concurrent calls with 2 retries make at most about
// N x (1 + 0.25 + 0.0625) attempts rather than 3N.
//
// A budget only works when it is shared: build one per called service (or per
// client) and pass it to every [NewRetry] and [NewHedge] that calls it. A
// refused retry fails its call with [budget.ErrExceeded]; a refused hedge is
// simply not started. The budget is safe for concurrent use.
func NewBudget(opts ...BudgetOption) budget.Budget {
	c := budgetConfig{maxRate: defaultBudgetRate, minConcurrency: defaultBudgetMinConcurrency}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	b := budget.NewBuilder().WithMaxRate(c.maxRate).WithMinConcurrency(c.minConcurrency)
	if c.onExceeded != nil {
		b = b.OnBudgetExceeded(c.onExceeded)
	}
	return b.Build()
}
