package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/pier-go/pier/resilience"
)

// A server that fails twice: the retry policy hides it from the caller.
func ExampleNewRetryBuilder() {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	client := &http.Client{Transport: resilience.Transport(&http.Transport{}, resilience.NewRetryBuilder().Build())}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", attempts.Load(), "attempts")
	// Output: 200 hello after 3 attempts
}

// Retries apply to idempotent requests only: a POST is sent once, unless it
// carries an Idempotency-Key.
func ExampleTransport() {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	client := &http.Client{Transport: resilience.Transport(&http.Transport{},
		resilience.NewRetryBuilder().WithDelayFunc(resilience.RetryDelay(time.Millisecond, time.Millisecond)).Build(),
		resilience.NewCircuitBreakerBuilder().Build(),
		resilience.NewTimeoutBuilder(2*time.Second).Build())}
	defer client.CloseIdleConnections()

	for _, key := range []string{"", "order-7"} {
		attempts.Store(0)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"item":42}`))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Printf("key %q: %d after %d attempt(s)\n", key, resp.StatusCode, attempts.Load())
	}
	// Output:
	// key "": 503 after 1 attempt(s)
	// key "order-7": 503 after 3 attempt(s)
}

func ExampleNewCircuitBreakerBuilder() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()

	breaker := resilience.NewCircuitBreakerBuilder().
		WithFailureRateThreshold(0.5, 2, time.Minute). // open at 50% of at least 2 calls
		WithDelay(time.Minute).
		Build()
	client := &http.Client{Transport: resilience.Transport(&http.Transport{}, breaker)}
	defer client.CloseIdleConnections()

	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			fmt.Println("open:", errors.Is(err, circuitbreaker.ErrOpen))
			continue
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println(breaker.State())
	// Output:
	// 502
	// 502
	// open: true
	// open
}

// A Retry-After within the cap replaces the backoff; otherwise the backoff is
// fully jittered, here between 0 and 2 ms before the second retry.
func ExampleRetryDelay() {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch attempts.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	defer srv.Close()

	var delays []time.Duration
	retry := resilience.NewRetryBuilder().
		WithDelayFunc(resilience.RetryDelay(time.Millisecond, 10*time.Millisecond)).
		OnRetryScheduled(func(e failsafe.ExecutionScheduledEvent[*http.Response]) { delays = append(delays, e.Delay) }).
		Build()
	client := &http.Client{Transport: resilience.Transport(&http.Transport{}, retry)}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, "after", attempts.Load(), "attempts")
	fmt.Println("first delay, from Retry-After:", delays[0])
	fmt.Println("second delay within [0, 2ms]:", delays[1] >= 0 && delays[1] <= 2*time.Millisecond)
	// Output:
	// 200 after 3 attempts
	// first delay, from Retry-After: 0s
	// second delay within [0, 2ms]: true
}

// One budget shared by the retries (and hedges) that call a service.
func ExampleNewBudgetBuilder() {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()

	var refused atomic.Int32
	b := resilience.NewBudgetBuilder().
		OnBudgetExceeded(func(budget.ExceededEvent) { refused.Add(1) }).
		Build()
	retry := resilience.NewRetryBuilder().WithBudget(b).Build()
	client := &http.Client{Transport: resilience.Transport(&http.Transport{}, retry)}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	// A lone call's 2 retries are within the 3 always allowed.
	fmt.Println(resp.StatusCode, "after", attempts.Load(), "attempts;", refused.Load(), "refused; rate now", b.Rate())
	// Output: 200 after 3 attempts; 0 refused; rate now 0
}

// A slow first attempt is overtaken by a hedge.
func ExampleNewHedgeBuilder() {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			<-r.Context().Done() // the first to arrive hangs until it loses
			return
		}
		fmt.Fprint(w, "hedge")
	}))
	defer srv.Close()

	hedge := resilience.NewHedgeBuilder(10 * time.Millisecond).Build()
	client := &http.Client{Transport: resilience.Transport(&http.Transport{}, hedge)}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hedge
}

// An attempt that has not answered within the timeout fails with
// timeout.ErrExceeded.
func ExampleNewTimeoutBuilder() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()

	client := &http.Client{Transport: resilience.Transport(&http.Transport{},
		resilience.NewTimeoutBuilder(20*time.Millisecond).Build())}
	defer client.CloseIdleConnections()
	_, err := client.Get(srv.URL)
	fmt.Println("timed out:", errors.Is(err, timeout.ErrExceeded))
	// Output: timed out: true
}

// A full bulkhead fails calls at once with bulkhead.ErrFull.
func ExampleNewBulkheadBuilder() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()

	bh := resilience.NewBulkheadBuilder(1).Build()
	client := &http.Client{Transport: resilience.Transport(&http.Transport{}, bh)}
	defer client.CloseIdleConnections()

	bh.TryAcquirePermit() // a long call holds the only slot
	_, err := client.Get(srv.URL)
	fmt.Println("full:", errors.Is(err, bulkhead.ErrFull))
	bh.ReleasePermit() // the long call ends
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// full: true
	// 200
}

// At one call a second, the second call in a row is rejected.
func ExampleNewRateLimiterBuilder() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()

	client := &http.Client{Transport: resilience.Transport(&http.Transport{},
		resilience.NewRateLimiterBuilder(1).Build())}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	_, err = client.Get(srv.URL)
	fmt.Println("limited:", errors.Is(err, ratelimiter.ErrExceeded))
	// Output:
	// 200
	// limited: true
}

// After a run of failures the throttler rejects most calls locally, at most
// 90% of them.
func ExampleNewAdaptiveThrottlerBuilder() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	throttler := resilience.NewAdaptiveThrottlerBuilder().Build()
	client := &http.Client{Transport: resilience.Transport(&http.Transport{}, throttler)}
	defer client.CloseIdleConnections()
	for range 20 { // the throttler decides from its 20th execution on
		resp, err := client.Get(srv.URL)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
	}
	// The next call is rejected with adaptivethrottler.ErrExceeded with
	// that probability.
	if resp, err := client.Get(srv.URL); err == nil {
		resp.Body.Close()
	}
	fmt.Printf("rejection rate %.2f\n", throttler.RejectionRate())
	// Output: rejection rate 0.90
}

func ExampleShed() {
	// A limiter of one, whose only permit a long request holds.
	limiter := adaptivelimiter.NewBuilder[*http.Response]().WithLimits(1, 1, 1).Build()
	handler := resilience.Shed(resilience.WithShedLimiter(limiter))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	permit, _ := limiter.TryAcquirePermit()

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/users/42", nil))
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())

	permit.Record() // the long request ends
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/users/42", nil))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 503 1 application/problem+json
	// {"title":"Service Unavailable","status":503,"detail":"the server is at its concurrency limit; retry after 1s"}
	// 200 ok
}

func ExampleIsFailure() {
	req, _ := http.NewRequest(http.MethodGet, "http://users/users/42", nil)
	for _, code := range []int{200, 404, 429, 500, 502, 503, 504} {
		resp := &http.Response{StatusCode: code}
		fmt.Println(code, resilience.IsFailure(req, resp, nil))
	}
	fmt.Println("timeout", resilience.IsFailure(req, nil, timeout.ErrExceeded))
	fmt.Println("breaker open", resilience.IsFailure(req, nil, circuitbreaker.ErrOpen))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fmt.Println("caller canceled", resilience.IsFailure(req.WithContext(ctx), nil, context.Canceled))
	// Output:
	// 200 false
	// 404 false
	// 429 true
	// 500 false
	// 502 true
	// 503 true
	// 504 true
	// timeout true
	// breaker open false
	// caller canceled false
}

func ExampleIdempotent() {
	get, _ := http.NewRequest(http.MethodGet, "http://users/users/42", nil)
	post, _ := http.NewRequest(http.MethodPost, "http://orders/orders", nil)
	fmt.Println(resilience.Idempotent(get), resilience.Idempotent(post))
	post.Header.Set("Idempotency-Key", "order-7")
	fmt.Println(resilience.Idempotent(post))
	// Output:
	// true false
	// true
}
