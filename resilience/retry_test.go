package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/pier-go/pier/resilience"
)

// fastRetry returns NewRetryBuilder with backoffs kept short for tests.
func fastRetry() retrypolicy.Builder[*http.Response] {
	return resilience.NewRetryBuilder().WithDelayFunc(resilience.RetryDelay(time.Millisecond, 2*time.Millisecond))
}

// statusSequence answers the statuses in turn, then the last one forever, and
// counts the requests it served.
func statusSequence(codes ...int) (http.Handler, *atomic.Int64) {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		code := codes[min(i, len(codes)-1)]
		w.WriteHeader(code)
		fmt.Fprintf(w, "attempt %d: %d", i+1, code)
	}), &n
}

func TestRetrySucceedsOnThirdAttempt(t *testing.T) {
	t.Parallel()
	h, attempts := statusSequence(503, 503, 200)
	srv := newServer(t, h)
	rt := resilience.Transport(newTransport(t), fastRetry().Build())
	code, body := get(t, rt, srv.URL)
	if code != 200 || attempts.Load() != 3 {
		t.Fatalf("got %d %q after %d attempts, want 200 after 3", code, body, attempts.Load())
	}
}

func TestRetryReturnsLastFailure(t *testing.T) {
	t.Parallel()
	h, attempts := statusSequence(503)
	srv := newServer(t, h)
	rt := resilience.Transport(newTransport(t), fastRetry().Build())
	code, body := get(t, rt, srv.URL)
	if code != 503 || body != "attempt 3: 503" || attempts.Load() != 3 {
		t.Fatalf("got %d %q after %d attempts, want the third attempt's 503", code, body, attempts.Load())
	}
}

func TestRetryLeavesNonFailuresAlone(t *testing.T) {
	t.Parallel()
	for _, code := range []int{200, 404, 409, 500, 501} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			h, attempts := statusSequence(code)
			srv := newServer(t, h)
			rt := resilience.Transport(newTransport(t), fastRetry().Build())
			if got, _ := get(t, rt, srv.URL); got != code || attempts.Load() != 1 {
				t.Fatalf("got %d after %d attempts, want %d after 1", got, attempts.Load(), code)
			}
		})
	}
}

func TestRetryOnlyIdempotentRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		key      bool
		body     func() io.Reader
		attempts int64
	}{
		{"POST", http.MethodPost, false, func() io.Reader { return strings.NewReader("payload") }, 1},
		{"PATCH", http.MethodPatch, false, func() io.Reader { return strings.NewReader("payload") }, 1},
		{"POST with Idempotency-Key", http.MethodPost, true, func() io.Reader { return strings.NewReader("payload") }, 3},
		{"PUT", http.MethodPut, false, func() io.Reader { return strings.NewReader("payload") }, 3},
		{"PUT, body without GetBody", http.MethodPut, false, func() io.Reader { return hiddenReader{strings.NewReader("payload")} }, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var attempts atomic.Int64
			var mu sync.Mutex
			var bodies []string
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				bodies = append(bodies, string(b))
				mu.Unlock()
				if attempts.Add(1) < 3 {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			}))
			rt := resilience.Transport(newTransport(t), fastRetry().Build())
			req, err := http.NewRequest(tt.method, srv.URL, tt.body())
			if err != nil {
				t.Fatal(err)
			}
			if tt.key {
				req.Header.Set("Idempotency-Key", "order-7")
			}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if attempts.Load() != tt.attempts {
				t.Fatalf("%d attempts, want %d", attempts.Load(), tt.attempts)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, b := range bodies {
				if b != "payload" {
					t.Errorf("attempt %d sent body %q, want %q", i+1, b, "payload")
				}
			}
		})
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	var (
		attempts atomic.Int64
		mu       sync.Mutex
		times    []time.Time
	)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if attempts.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	var delays []time.Duration
	rt := resilience.Transport(newTransport(t), fastRetry().
		OnRetryScheduled(func(e failsafe.ExecutionScheduledEvent[*http.Response]) {
			delays = append(delays, e.Delay) // the retry loop is sequential
		}).Build())
	if code, _ := get(t, rt, srv.URL); code != 200 {
		t.Fatalf("status %d, want 200", code)
	}
	if len(delays) != 1 || delays[0] != time.Second {
		t.Fatalf("scheduled delays %v, want [1s] from Retry-After: 1", delays)
	}
	mu.Lock()
	defer mu.Unlock()
	// A generous lower bound only: the retry must not have come early.
	if gap := times[1].Sub(times[0]); gap < 900*time.Millisecond {
		t.Errorf("retry came %v after the 503, before its Retry-After", gap)
	}
}

func TestRetryAfterBeyondWhatThePolicyWaits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		retryAfter string
		deadline   time.Duration // 0: none
	}{
		{"longer than the cap", "60", 0},
		{"longer than the caller's deadline", "5", 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var attempts atomic.Int64
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				attempts.Add(1)
				w.Header().Set("Retry-After", tt.retryAfter)
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			rt := resilience.Transport(newTransport(t), fastRetry().Build())
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != tt.retryAfter || attempts.Load() != 1 {
				t.Fatalf("got %d (Retry-After %q) after %d attempts, want the 429 at once",
					resp.StatusCode, resp.Header.Get("Retry-After"), attempts.Load())
			}
		})
	}
}

func TestRetryBackoffIsFullJitter(t *testing.T) {
	t.Parallel()
	h, _ := statusSequence(503)
	srv := newServer(t, h)
	base, ceiling := time.Millisecond, 4*time.Millisecond
	var delays []time.Duration
	rt := resilience.Transport(newTransport(t), resilience.NewRetryBuilder().
		WithMaxRetries(5).
		WithDelayFunc(resilience.RetryDelay(base, ceiling)).
		OnRetryScheduled(func(e failsafe.ExecutionScheduledEvent[*http.Response]) {
			delays = append(delays, e.Delay)
		}).Build())
	get(t, rt, srv.URL)
	if len(delays) != 5 {
		t.Fatalf("%d retries scheduled, want 5", len(delays))
	}
	for n, d := range delays {
		if limit := min(ceiling, base<<n); d < 0 || d > limit {
			t.Errorf("retry %d delay %v outside [0, %v]", n, d, limit)
		}
	}
}

func TestRetryNotOnCallerCancellation(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	arrived := make(chan struct{}, 4)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	rt := resilience.Transport(newTransport(t), fastRetry().Build())
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := rt.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	recv(t, arrived, "the attempt")
	cancel()
	if err := recv(t, errc, "the call"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if attempts.Load() != 1 {
		t.Fatalf("%d attempts, want 1", attempts.Load())
	}
}

// TestRetryReusesConnection checks that the bodies of retried responses are
// drained and closed: over keep-alive, every attempt of every call rides the
// same connection.
func TestRetryReusesConnection(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	errorPage := strings.Repeat("x", 1500)
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1)%3 != 0 {
			http.Error(w, errorPage, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	rt := resilience.Transport(newTransport(t), fastRetry().Build())
	const calls = 5
	for range calls {
		if code, _ := get(t, rt, srv.URL); code != 200 {
			t.Fatalf("status %d, want 200", code)
		}
	}
	if attempts.Load() != 3*calls || conns.Load() != 1 {
		t.Fatalf("%d attempts over %d connections, want %d over 1", attempts.Load(), conns.Load(), 3*calls)
	}
}

// TestRetryBudgetBoundsAttempts fails every attempt of many concurrent calls
// and checks that the budget keeps the retries to its share of the executions
// in flight. The server holds each wave of attempts until every call has either
// finished or sent its next attempt, so that the calls really are concurrent.
func TestRetryBudgetBoundsAttempts(t *testing.T) {
	t.Parallel()
	const (
		n       = 60
		maxRate = 0.2
	)
	var (
		attempts atomic.Int64
		mu       sync.Mutex
		release  = make(chan struct{})
	)
	arrived := make(chan struct{}, 4*n)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		mu.Lock()
		wave := release
		mu.Unlock()
		arrived <- struct{}{}
		select {
		case <-wave:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	releaseWave := func() {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-release:
		default:
			close(release)
		}
		release = make(chan struct{})
	}
	t.Cleanup(releaseWave)

	b := resilience.NewBudgetBuilder().WithMaxRate(maxRate).Build()
	rt := resilience.Transport(newTransport(t), fastRetry().WithBudget(b).Build())
	done := make(chan error, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			resp, err := rt.RoundTrip(req)
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
	}
	var waves []int
	finished, exceeded := 0, 0
	deadline := time.After(waitLimit)
	for finished < n {
		blocked := 0
		for blocked+finished < n {
			select {
			case <-arrived:
				blocked++
			case err := <-done:
				finished++
				if err != nil {
					if err != budget.ErrExceeded {
						t.Errorf("err = %v, want budget.ErrExceeded unchanged", err)
					}
					exceeded++
				}
			case <-deadline:
				t.Fatalf("stuck: %d blocked, %d finished of %d", blocked, finished, n)
			}
		}
		waves = append(waves, blocked)
		releaseWave()
	}

	ratio := float64(attempts.Load()) / n
	t.Logf("%d calls, %d attempts (%.2f per call), waves %v, %d refused by the budget",
		n, attempts.Load(), ratio, waves, exceeded)
	if exceeded == 0 {
		t.Error("the budget refused no retry")
	}
	// While the n first attempts were in flight, admitted retries r satisfy
	// r/(n+r) <= maxRate (after the permit that crossed it).
	if r := float64(waves[1]); r/(n+r) > maxRate+1.0/n {
		t.Errorf("first wave admitted %v retries of %d calls: %.2f of executions, above %.2f", r, n, r/(n+r), maxRate)
	}
	// Each wave is at most maxRate/(1-maxRate) of the calls still retrying, plus
	// one, or the minimum concurrency of 3: with 2 retries that bounds the
	// attempts per call at 1 + q + q*q, plus those few.
	q := maxRate / (1 - maxRate)
	wave1 := math.Floor(float64(n)*q+1e-9) + 1
	bound := float64(n) + wave1 + max(3, math.Floor(wave1*q+1e-9)+1)
	if got := float64(attempts.Load()); got > bound {
		t.Errorf("%v attempts for %d calls, above the budget's bound of %.0f (%.2f per call)", got, n, bound, bound/n)
	}
}

// TestRetryBudgetErrorThroughClient checks that budget.ErrExceeded reaches an
// http.Client's caller unchanged inside its *url.Error.
func TestRetryBudgetErrorThroughClient(t *testing.T) {
	t.Parallel()
	h, _ := statusSequence(503)
	srv := newServer(t, h)
	b := resilience.NewBudgetBuilder().WithMaxRate(0.01).WithMinConcurrency(1).Build()
	// Hold the budget's only permit, as a concurrent retry would.
	hold, held, holderDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	holder := resilience.Transport(newTransport(t), resilience.NewRetryBuilder().WithBudget(b).
		WithDelayFunc(resilience.RetryDelay(time.Millisecond, time.Millisecond)).
		OnRetry(func(failsafe.ExecutionEvent[*http.Response]) {
			once.Do(func() { close(held); <-hold })
		}).Build())
	go func() {
		defer close(holderDone)
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if resp, err := holder.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
	}()
	recv(t, held, "the held retry")
	defer func() { close(hold); <-holderDone }()

	client := &http.Client{Transport: resilience.Transport(newTransport(t),
		fastRetry().WithBudget(b).Build())}
	_, err := client.Get(srv.URL)
	var ue *url.Error
	if !errors.As(err, &ue) || ue.Err != budget.ErrExceeded {
		t.Fatalf("err = %#v, want *url.Error{Err: budget.ErrExceeded}", err)
	}
}

// TestHugeRetryAfterOverflow is the regression test for a Retry-After
// so large that converting it to a time.Duration overflowed: 9223372037
// seconds became a negative delay and 18446744074 a delay of 0.29 s, so a
// server asking for a long pause was retried at once. A Retry-After past the
// cap, however large, stops the retries and returns the response.
func TestHugeRetryAfterOverflow(t *testing.T) {
	t.Parallel()
	for _, retryAfter := range []string{
		"11",                   // just past the 10 s cap
		"9223372037",           // * time.Second overflows to a negative delay
		"18446744074",          // * time.Second wraps to 0.29 s
		"99999999999999999999", // past int64 altogether
	} {
		t.Run(retryAfter, func(t *testing.T) {
			t.Parallel()
			var attempts atomic.Int64
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				attempts.Add(1)
				w.Header().Set("Retry-After", retryAfter)
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			rt := resilience.Transport(newTransport(t), fastRetry().Build())
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != retryAfter || attempts.Load() != 1 {
				t.Fatalf("got %d (Retry-After %q) after %d attempts, want the 503 at once, not retried",
					resp.StatusCode, resp.Header.Get("Retry-After"), attempts.Load())
			}
		})
	}
}
