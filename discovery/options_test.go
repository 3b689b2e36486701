package discovery_test

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/resilience"
)

// TestClientInvalidOptions checks the option grammar's error half: a negative
// value, a nil builder or a nil option never panics; the client fails every
// request, before sending anything, with an error that names the option.
func TestClientInvalidOptions(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1, ok)
	tests := []struct {
		name string
		opt  discovery.ClientOption
		want string
	}{
		{"negative retries", discovery.WithRetries(-1), "WithRetries(-1)"},
		{"negative backoff", discovery.WithRetryBackoff(-time.Millisecond, 0), "WithRetryBackoff(-1ms, 0s)"},
		{"budget rate below 0", discovery.WithRetryBudget(-0.1, 0), "WithRetryBudget(-0.1, 0)"},
		{"budget rate above 1", discovery.WithRetryBudget(1.5, 3), "WithRetryBudget(1.5, 3)"},
		{"budget rate NaN", discovery.WithRetryBudget(math.NaN(), 0), "WithRetryBudget(NaN, 0)"},
		{"nil breaker builder", discovery.WithCircuitBreaker(nil), "WithCircuitBreaker(nil)"},
		{"negative attempt timeout", discovery.WithAttemptTimeout(-time.Second), "WithAttemptTimeout(-1s)"},
		{"negative deadline floor", discovery.WithDeadlineFloor(-time.Second), "WithDeadlineFloor(-1s)"},
		{"nil option", nil, "option 0 of NewClient is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := f.client(t, tt.opt)
			for _, target := range []string{"http://users/work", "http://" + f.ins[0].addr + "/work"} {
				_, err := call(c, "GET", target, nil)
				var ue *url.Error
				if !errors.As(err, &ue) || !strings.HasPrefix(ue.Err.Error(), "discovery: ") || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("GET %s: err = %v, want a discovery error naming %s", target, err, tt.want)
				}
			}
			if hits := f.ins[0].hits.Load(); hits != 0 {
				t.Fatalf("%d requests reached the instance, want none", hits)
			}
		})
	}
}

// TestClientRetryOptions checks the option grammar's other half: zero means
// the default, and WithoutRetries turns retries off.
func TestClientRetryOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []discovery.ClientOption
		attempts int64
	}{
		{"default", nil, 1 + discovery.DefaultRetries},
		{"zero means the default", []discovery.ClientOption{discovery.WithRetries(0), discovery.WithRetryBudget(0, 0)}, 1 + discovery.DefaultRetries},
		{"one retry", []discovery.ClientOption{discovery.WithRetries(1)}, 2},
		{"without retries", []discovery.ClientOption{discovery.WithoutRetries()}, 1},
		{"without retries, then retries", []discovery.ClientOption{discovery.WithoutRetries(), discovery.WithRetries(1)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, 1, status(http.StatusServiceUnavailable))
			opts := append([]discovery.ClientOption{
				discovery.WithRetryBackoff(time.Millisecond, 2*time.Millisecond),
				discovery.WithoutCircuitBreaker(),
			}, tt.opts...)
			c := f.client(t, opts...)
			if code, err := call(c, "GET", "http://users/work", nil); err != nil || code != http.StatusServiceUnavailable {
				t.Fatalf("GET = %d, %v; want the last 503", code, err)
			}
			if hits := f.ins[0].hits.Load(); hits != tt.attempts {
				t.Fatalf("%d attempts, want %d", hits, tt.attempts)
			}
		})
	}
}

// TestClientBreakerBuilderKeepsUserListener checks that the breaker the client
// builds from a caller's builder keeps the caller's tuning and its
// OnStateChanged listener beside the client's metrics.
func TestClientBreakerBuilderKeepsUserListener(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1, status(http.StatusServiceUnavailable))
	var mu sync.Mutex
	var changes []circuitbreaker.State
	b := resilience.NewCircuitBreakerBuilder().
		WithFailureRateThreshold(1, 2, time.Minute).
		WithDelay(time.Minute).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			mu.Lock()
			changes = append(changes, e.NewState)
			mu.Unlock()
		})
	c := f.client(t, discovery.WithoutRetries(), discovery.WithCircuitBreaker(b))
	for range 2 {
		if code, err := call(c, "GET", "http://users/work", nil); err != nil || code != http.StatusServiceUnavailable {
			t.Fatalf("GET = %d, %v; want 503", code, err)
		}
	}
	if _, err := call(c, "GET", "http://users/work", nil); !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Fatalf("third GET: err = %v, want circuitbreaker.ErrOpen after 2 failures", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 1 || changes[0] != circuitbreaker.OpenState {
		t.Fatalf("the caller's listener saw %v, want [open]", changes)
	}
}
