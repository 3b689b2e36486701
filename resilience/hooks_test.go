package resilience_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/pier-go/pier/resilience"
)

// TestHooksAddUp: a second hook option must add a hook, not replace the first,
// so that the discovery client's metrics hook and a caller's both run.
func TestHooksAddUp(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls []string
	hook := func(name string) func() {
		return func() {
			mu.Lock()
			calls = append(calls, name)
			mu.Unlock()
		}
	}
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	retryHook := func(name string) resilience.RetryOption {
		f := hook(name)
		return resilience.WithOnRetry(func(failsafe.ExecutionEvent[*http.Response]) { f() })
	}
	breakerHook := func(name string) resilience.BreakerOption {
		f := hook(name)
		return resilience.WithOnStateChange(func(circuitbreaker.StateChangedEvent) { f() })
	}
	rt := resilience.Transport(newTransport(t),
		resilience.NewRetry(resilience.WithMaxRetries(1), resilience.WithBackoff(time.Millisecond, time.Millisecond),
			retryHook("retry 1"), resilience.WithOnRetry(nil), retryHook("retry 2")),
		resilience.NewCircuitBreaker(resilience.WithFailureRate(1, 2, time.Minute),
			breakerHook("breaker 1"), breakerHook("breaker 2")))
	if code, _ := get(t, rt, srv.URL); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want the last 503", code)
	}
	want := []string{"retry 1", "retry 2", "breaker 1", "breaker 2"}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(calls, want) {
		t.Fatalf("hooks ran %q, want %q", calls, want)
	}

	// The budget's hook, likewise.
	var exceeded []string
	b := resilience.NewBudget(
		resilience.WithOnBudgetExceeded(func(budget.ExceededEvent) { exceeded = append(exceeded, "1") }),
		resilience.WithOnBudgetExceeded(func(budget.ExceededEvent) { exceeded = append(exceeded, "2") }))
	b.(interface {
		OnBudgetExceeded(budget.ExecutionType, failsafe.ExecutionInfo)
	}).OnBudgetExceeded(budget.RetryExecution, nil)
	if !slices.Equal(exceeded, []string{"1", "2"}) {
		t.Fatalf("budget hooks ran %q, want both", exceeded)
	}
}
