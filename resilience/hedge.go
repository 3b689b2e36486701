package resilience

import (
	"net/http"
	"time"

	"github.com/failsafe-go/failsafe-go/hedgepolicy"
)

// Adaptive hedge delay: "The Tail at Scale" (Dean and Barroso) hedges a request
// once it has been outstanding longer than the 95th-percentile latency.
const (
	hedgeQuantile      = 0.95
	hedgeQuantileAge   = 100 // executions the moving quantile effectively remembers
	hedgeMinExecutions = 20  // executions observed before hedging starts
)

// NewHedgeBuilder returns failsafe-go's hedge policy builder: when an attempt
// has not answered after delay, another one starts beside it, and the first
// outcome wins; the others are canceled and their responses closed. delay <= 0
// means adaptive: hedge once an attempt outlasts the 95th percentile of recent
// successful attempts ("The Tail at Scale"), after 20 have been observed. At
// most 1 hedge is started (WithMaxHedges; failsafe-go's default and "The Tail
// at Scale"'s: a second request already removes most of the tail).
//
// Tune it with failsafe's own builder methods, then Build: WithMaxHedges,
// WithBudget (the budget the retry policy uses, so that retries and hedges
// together stay within it; a refused hedge is simply not started), OnHedge.
//
// Hedging sends a request more than once at the same time, so only idempotent
// requests may be hedged: [Transport] applies the built policy to those alone,
// and anyone using it another way must do the same. Place it outside the
// per-attempt timeout: Transport(next, retry, hedge, breaker, timeout). The
// builder is not safe for concurrent use; the policy it builds is.
func NewHedgeBuilder(delay time.Duration) hedgepolicy.Builder[*http.Response] {
	var b hedgepolicy.Builder[*http.Response]
	if delay > 0 {
		b = hedgepolicy.NewBuilderWithDelay[*http.Response](delay)
	} else {
		b = hedgepolicy.NewBuilderWithDelayQuantile[*http.Response](hedgeQuantile, hedgeQuantileAge, hedgeMinExecutions)
	}
	return b.WithMaxHedges(1)
}
