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

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/pier-go/pier/resilience"
)

// A server that fails twice: the retry policy hides it from the caller.
func ExampleNewRetry() {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	client := &http.Client{Transport: resilience.Transport(&http.Transport{}, resilience.NewRetry())}
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
		resilience.NewRetry(resilience.WithBackoff(time.Millisecond, time.Millisecond)),
		resilience.NewCircuitBreaker(),
		resilience.NewTimeout(2*time.Second))}
	defer client.CloseIdleConnections()

	for _, key := range []string{"", "order-7"} {
		attempts.Store(0)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"item":42}`))
		if key != "" {
			req.Header.Set(resilience.IdempotencyKeyHeader, key)
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

func ExampleNewCircuitBreaker() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()

	breaker := resilience.NewCircuitBreaker(
		resilience.WithFailureRate(0.5, 2, time.Minute), // open at 50% of at least 2 calls
		resilience.WithOpenDelay(time.Minute))
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
	post.Header.Set(resilience.IdempotencyKeyHeader, "order-7")
	fmt.Println(resilience.Idempotent(post))
	// Output:
	// true false
	// true
}
