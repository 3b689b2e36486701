package resilience_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"

	"github.com/pier-go/pier/resilience"
)

// TestShedHooksAddUp: a second WithOnShed must add a hook, not replace the
// first, so that a Service's shed counter and a caller's hook both run.
func TestShedHooksAddUp(t *testing.T) {
	t.Parallel()
	var calls []string
	hook := func(name string) resilience.ShedOption {
		return resilience.WithOnShed(func(*http.Request) { calls = append(calls, name) })
	}
	limiter := adaptivelimiter.NewBuilder[*http.Response]().WithLimits(1, 1, 1).Build()
	permit, ok := limiter.TryAcquirePermit() // the limit is reached
	if !ok {
		t.Fatal("no permit from an idle limiter")
	}
	defer permit.Drop()
	h := resilience.Shed(resilience.WithShedLimiter(limiter), hook("shed 1"), resilience.WithOnShed(nil), hook("shed 2"))(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("a request past the limit was served") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if want := []string{"shed 1", "shed 2"}; !slices.Equal(calls, want) {
		t.Fatalf("hooks ran %q, want %q", calls, want)
	}
}
