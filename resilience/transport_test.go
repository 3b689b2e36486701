package resilience_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/fallback"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/pier-go/pier/resilience"
)

// TestTransportLargeBodySentOnce checks that an idempotent request whose body
// is too large to buffer, and has no GetBody, is streamed once, intact, and not
// retried.
func TestTransportLargeBodySentOnce(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	var received atomic.Int64
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		received.Store(n)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	rt := resilience.Transport(newTransport(t), fastRetry().Build())
	const size = 1<<20 + 10
	for _, length := range []int64{-1, size} { // unknown, then known length
		attempts.Store(0)
		req, _ := http.NewRequest(http.MethodPut, srv.URL, hiddenReader{bytes.NewReader(make([]byte, size))})
		req.ContentLength = length
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if attempts.Load() != 1 || received.Load() != size {
			t.Fatalf("length %d: %d attempts received %d bytes, want 1 attempt with %d", length, attempts.Load(), received.Load(), size)
		}
	}
}

func TestTransportClosesBodyWhenRejected(t *testing.T) {
	t.Parallel()
	h, attempts := statusSequence(200)
	srv := newServer(t, h)
	cb := resilience.NewCircuitBreakerBuilder().Build()
	cb.Open()
	rt := resilience.Transport(newTransport(t), fastRetry().Build(), cb)
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		body := &closeTracker{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest(method, srv.URL, body)
		_, err := rt.RoundTrip(req)
		if err != circuitbreaker.ErrOpen {
			t.Fatalf("%s: err = %v, want circuitbreaker.ErrOpen unchanged", method, err)
		}
		if !body.closed.Load() {
			t.Errorf("%s: request body left open", method)
		}
	}
	if attempts.Load() != 0 {
		t.Fatalf("%d attempts, want none", attempts.Load())
	}
}

// TestTransportTimeoutRetried checks that a per-attempt timeout cancels the
// attempt, counts as a failure and is retried.
func TestTransportTimeoutRetried(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	firstCanceled := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			<-r.Context().Done()
			close(firstCanceled)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	var timeouts atomic.Int64
	rt := resilience.Transport(newTransport(t), fastRetry().
		OnRetry(func(e failsafe.ExecutionEvent[*http.Response]) {
			if errors.Is(e.LastError(), timeout.ErrExceeded) {
				timeouts.Add(1)
			}
		}).Build(), resilience.NewTimeoutBuilder(100*time.Millisecond).Build())
	if code, body := get(t, rt, srv.URL); code != 200 || body != "ok" {
		t.Fatalf("got %d %q, want 200 %q", code, body, "ok")
	}
	recv(t, firstCanceled, "the timed-out attempt's cancellation")
	// A slow machine may time out an attempt before it reaches the server too.
	if attempts.Load() != 2 || timeouts.Load() < 1 {
		t.Fatalf("%d attempts, %d retried timeouts; want 2 and at least 1", attempts.Load(), timeouts.Load())
	}
}

// TestTransportTimeoutSpareBody checks that the attempt's context outlives the
// attempt until the body is closed: a timeout bounds the headers, not the body.
func TestTransportTimeoutSpareBody(t *testing.T) {
	t.Parallel()
	gotHeaders := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first half, ")
		w.(http.Flusher).Flush()
		select {
		case <-gotHeaders:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "second half")
	}))
	for _, policies := range [][]failsafe.Policy[*http.Response]{
		{resilience.NewTimeoutBuilder(time.Minute).Build()},
		{resilience.NewRetryBuilder().Build(), resilience.NewHedgeBuilder(time.Minute).Build(), resilience.NewTimeoutBuilder(time.Minute).Build()},
	} {
		rt := resilience.Transport(newTransport(t), policies...)
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		gotHeaders <- struct{}{}
		if _, body := readAll(t, resp); body != "first half, second half" {
			t.Fatalf("body %q", body)
		}
	}
}

// TestTransportMixesUserPolicies checks that a failsafe policy built outside
// this package composes with ours: a fallback outside the retries answers when
// they run out.
func TestTransportMixesUserPolicies(t *testing.T) {
	t.Parallel()
	h, attempts := statusSequence(503)
	srv := newServer(t, h)
	fb := fallback.NewBuilderWithFunc(func(e failsafe.Execution[*http.Response]) (*http.Response, error) {
		if r := e.LastResult(); r != nil {
			r.Body.Close()
		}
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("cached")), Header: http.Header{}}, nil
	}).HandleIf(func(r *http.Response, err error) bool { return resilience.IsFailure(nil, r, err) }).Build()
	rt := resilience.Transport(newTransport(t), fb, fastRetry().Build())
	if code, body := get(t, rt, srv.URL); code != 200 || body != "cached" || attempts.Load() != 3 {
		t.Fatalf("got %d %q after %d attempts, want the fallback after 3", code, body, attempts.Load())
	}
}

// TestTransportCallerContextReachesAttempts checks that values in the caller's
// context reach every attempt, which per-attempt logic in next relies on.
func TestTransportCallerContextReachesAttempts(t *testing.T) {
	t.Parallel()
	type key struct{}
	var seen atomic.Int64
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Context().Value(key{}) == "tried" {
			seen.Add(1)
		}
		return &http.Response{StatusCode: 503, Body: http.NoBody, Request: r}, nil
	})
	rt := resilience.Transport(next, fastRetry().Build(), resilience.NewHedgeBuilder(time.Minute).Build(), resilience.NewTimeoutBuilder(time.Minute).Build())
	req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), key{}, "tried"), http.MethodGet, "http://users/", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen.Load() != 3 {
		t.Fatalf("%d attempts saw the caller's context value, want 3", seen.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTransportWithholdsForeignRetryPolicies checks that a retry policy built
// with failsafe-go directly is recognised too: it never resends a POST.
func TestTransportWithholdsForeignRetryPolicies(t *testing.T) {
	t.Parallel()
	h, attempts := statusSequence(503)
	srv := newServer(t, h)
	rp := retrypolicy.NewBuilder[*http.Response]().
		HandleIf(func(r *http.Response, err error) bool { return resilience.IsFailure(nil, r, err) }).
		ReturnLastFailure().
		Build()
	rt := resilience.Transport(newTransport(t), rp)
	for _, tt := range []struct {
		method string
		want   int64
	}{{http.MethodPost, 1}, {http.MethodPut, 3}} {
		attempts.Store(0)
		req, _ := http.NewRequest(tt.method, srv.URL, strings.NewReader("x"))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if attempts.Load() != tt.want {
			t.Errorf("%s: %d attempts, want %d", tt.method, attempts.Load(), tt.want)
		}
	}
}

// wrapped is a policy that wraps another, as a user's logging or metrics
// decorator would, and says so with Unwrap.
type wrapped struct {
	failsafe.Policy[*http.Response]
}

func (w wrapped) Unwrap() failsafe.Policy[*http.Response] { return w.Policy }

// TestTransportWithholdsWrappedRetryPolicies checks that a retry or hedge
// policy inside a wrapper with Unwrap is recognised: it never resends a POST.
func TestTransportWithholdsWrappedRetryPolicies(t *testing.T) {
	t.Parallel()
	h, attempts := statusSequence(503)
	srv := newServer(t, h)
	for _, p := range []failsafe.Policy[*http.Response]{
		wrapped{fastRetry().Build()},
		wrapped{wrapped{fastRetry().Build()}},
	} {
		rt := resilience.Transport(newTransport(t), p)
		for _, tt := range []struct {
			method string
			want   int64
		}{{http.MethodPost, 1}, {http.MethodPut, 3}} {
			attempts.Store(0)
			req, _ := http.NewRequest(tt.method, srv.URL, strings.NewReader("x"))
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if attempts.Load() != tt.want {
				t.Errorf("%T %s: %d attempts, want %d", p, tt.method, attempts.Load(), tt.want)
			}
		}
	}
}

// TestTransportSentOnceBypassesBudget checks the documented behaviour of a
// budget for a request that may not be sent twice: it runs without the retry
// policy, so an exhausted budget neither refuses it nor counts it.
func TestTransportSentOnceBypassesBudget(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		if r.Method == http.MethodPost {
			arrived <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	var refused atomic.Int64
	b := resilience.NewBudgetBuilder().WithMaxRate(0.4).WithMinConcurrency(1).
		OnBudgetExceeded(func(budget.ExceededEvent) { refused.Add(1) }).Build()
	// Hold the budget's only permit, as a concurrent retry would: the rate is
	// then 1 retry of 1 execution in flight.
	permits := b.(interface {
		TryAcquirePermit() bool
		ReleasePermit()
	})
	if !permits.TryAcquirePermit() {
		t.Fatal("an idle budget refused a permit")
	}
	defer permits.ReleasePermit()
	rt := resilience.Transport(newTransport(t), fastRetry().WithBudget(b).Build())

	// The budget refuses an idempotent request's retry.
	req, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("x"))
	if _, err := rt.RoundTrip(req); err != budget.ErrExceeded {
		t.Fatalf("PUT: err = %v, want budget.ErrExceeded unchanged", err)
	}
	if attempts.Load() != 1 || refused.Load() != 1 {
		t.Fatalf("PUT: %d attempts, %d refusals; want 1 and 1", attempts.Load(), refused.Load())
	}

	// A POST is sent once, answered, and never meets the budget: while it is
	// in flight the budget does not count it (were it counted, the rate would
	// fall to 1 of 2).
	attempts.Store(0)
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("x"))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Errorf("POST: %v", err)
		}
		done <- resp
	}()
	recv(t, arrived, "the POST")
	rate := b.Rate()
	close(release)
	resp := recv(t, done, "the POST's response")
	if resp == nil {
		t.FailNow()
	}
	if code, _ := readAll(t, resp); code != 503 || attempts.Load() != 1 || refused.Load() != 1 {
		t.Fatalf("POST: %d after %d attempts, %d refusals; want the 503 after 1, no new refusal", code, attempts.Load(), refused.Load())
	}
	if rate != 1 {
		t.Fatalf("budget rate %v while the POST was in flight, want 1: the POST is not counted", rate)
	}
}
