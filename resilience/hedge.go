package resilience

import (
	"net/http"

	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"
)

// Adaptive hedge delay: "The Tail at Scale" (Dean and Barroso) hedges a request
// once it has been outstanding longer than the 95th-percentile latency.
const (
	hedgeQuantile      = 0.95
	hedgeQuantileAge   = 100 // executions the moving quantile effectively remembers
	hedgeMinExecutions = 20  // executions observed before hedging starts
)

// HedgeOption configures [NewHedge].
type HedgeOption func(*hedgeConfig)

type hedgeConfig struct {
	maxHedges int
	budget    budget.Budget
	onHedge   func(failsafe.ExecutionEvent[*http.Response])
}

// WithMaxHedges sets how many extra attempts may be started, one per delay,
// while the earlier ones are still outstanding. The default is 1, failsafe-go's
// and "The Tail at Scale"'s: a second request already removes most of the tail.
// n < 1 means the default.
func WithMaxHedges(n int) HedgeOption {
	return func(c *hedgeConfig) {
		if n >= 1 {
			c.maxHedges = n
		}
	}
}

// WithHedgeBudget makes every hedge take a permit from b (see [NewBudget]); a
// refused hedge is simply not started. Pass the budget the retry policy uses, so
// that retries and hedges together stay within it. b must come from NewBudget
// or failsafe-go's budget package. The default is no budget: only the delay
// limits hedging.
func WithHedgeBudget(b budget.Budget) HedgeOption {
	return func(c *hedgeConfig) { c.budget = b }
}

// WithOnHedge registers fn to be called when a hedge is about to start: a hook
// for metrics. Each use adds a hook, run in the order given. The default is no
// hook.
func WithOnHedge(fn func(failsafe.ExecutionEvent[*http.Response])) HedgeOption {
	return func(c *hedgeConfig) { c.onHedge = chain(c.onHedge, fn) }
}

// NewHedge returns failsafe-go's hedge policy: when an attempt has not answered
// after delay, another one starts beside it, and the first outcome wins; the
// others are canceled and their responses closed. delay <= 0 means adaptive:
// hedge once an attempt outlasts the 95th percentile of recent successful
// attempts ("The Tail at Scale"), after 20 have been observed.
//
// Hedging sends a request more than once at the same time, so only idempotent
// requests may be hedged: [Transport] applies the policy to those alone, and
// anyone using it another way must do the same. Place it outside the per-attempt
// timeout: Transport(next, NewRetry(), NewHedge(d), NewCircuitBreaker(),
// NewTimeout(t)). The policy is safe for concurrent use.
func NewHedge(delay time.Duration, opts ...HedgeOption) hedgepolicy.HedgePolicy[*http.Response] {
	c := hedgeConfig{maxHedges: 1}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	var b hedgepolicy.Builder[*http.Response]
	if delay > 0 {
		b = hedgepolicy.NewBuilderWithDelay[*http.Response](delay)
	} else {
		b = hedgepolicy.NewBuilderWithDelayQuantile[*http.Response](hedgeQuantile, hedgeQuantileAge, hedgeMinExecutions)
	}
	b = b.WithMaxHedges(c.maxHedges)
	if c.budget != nil {
		if _, ok := c.budget.(failsafeBudget); ok { // WithBudget panics on any other kind
			b = b.WithBudget(c.budget)
		}
	}
	if c.onHedge != nil {
		b = b.OnHedge(c.onHedge)
	}
	return b.Build()
}
