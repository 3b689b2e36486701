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
	rt := resilience.Transport(newTransport(t), resilience.NewRetry(fastRetry))
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
	cb := resilience.NewCircuitBreaker()
	cb.Open()
	rt := resilience.Transport(newTransport(t), resilience.NewRetry(fastRetry), cb)
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
	rt := resilience.Transport(newTransport(t), resilience.NewRetry(fastRetry,
		resilience.WithOnRetry(func(e failsafe.ExecutionEvent[*http.Response]) {
			if errors.Is(e.LastError(), timeout.ErrExceeded) {
				timeouts.Add(1)
			}
		})), resilience.NewTimeout(100*time.Millisecond))
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
		{resilience.NewTimeout(time.Minute)},
		{resilience.NewRetry(), resilience.NewHedge(time.Minute), resilience.NewTimeout(time.Minute)},
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
	rt := resilience.Transport(newTransport(t), fb, resilience.NewRetry(fastRetry))
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
	rt := resilience.Transport(next, resilience.NewRetry(fastRetry), resilience.NewHedge(time.Minute), resilience.NewTimeout(time.Minute))
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
