package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/adaptivethrottler"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/pier-go/pier/resilience"
)

func TestIsFailure(t *testing.T) {
	t.Parallel()
	live := httpRequest(t, context.Background())
	canceledCtx, cancel := context.WithCancel(context.Background())
	cancel()
	canceled := httpRequest(t, canceledCtx)
	expiredCtx, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	expired := httpRequest(t, expiredCtx)

	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		req  *http.Request
		code int // 0: no response
		err  error
		want bool
	}{
		{"200", live, 200, nil, false},
		{"404", live, 404, nil, false},
		{"409", live, 409, nil, false},
		{"429", live, 429, nil, true},
		{"500", live, 500, nil, false},
		{"501", live, 501, nil, false},
		{"502", live, 502, nil, true},
		{"503", live, 503, nil, true},
		{"504", live, 504, nil, true},
		{"503 without request", nil, 503, nil, true},
		{"503 after the caller left", canceled, 503, nil, true},
		{"nothing", nil, 0, nil, false},
		{"connection refused", live, 0, refused, true},
		{"connection refused without request", nil, 0, refused, true},
		{"unexpected EOF", live, 0, io.ErrUnexpectedEOF, true},
		{"per-attempt timeout", live, 0, timeout.ErrExceeded, true},
		{"per-attempt timeout without request", nil, 0, timeout.ErrExceeded, true},
		{"attempt deadline, caller live", live, 0, context.DeadlineExceeded, true},
		{"attempt deadline with timeout cause", expired, 0, fmt.Errorf("attempt: %w", timeout.ErrExceeded), true},
		{"caller deadline", expired, 0, context.DeadlineExceeded, false},
		{"caller deadline, other error shape", expired, 0, errors.New("net/http: request canceled"), false},
		{"bare deadline without request", nil, 0, context.DeadlineExceeded, false},
		{"header timeout without request", nil, 0, headerTimeout{}, true},
		{"caller cancel", canceled, 0, context.Canceled, false},
		{"cancel, caller live (lost hedge)", live, 0, context.Canceled, false},
		{"wrapped cancel without request", nil, 0, fmt.Errorf("get: %w", context.Canceled), false},
		{"breaker open", live, 0, circuitbreaker.ErrOpen, false},
		{"bulkhead full", live, 0, bulkhead.ErrFull, false},
		{"rate limited", live, 0, ratelimiter.ErrExceeded, false},
		{"budget exceeded", live, 0, budget.ErrExceeded, false},
		{"throttled", live, 0, adaptivethrottler.ErrExceeded, false},
		{"limited", live, 0, adaptivelimiter.ErrExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			if tt.code != 0 {
				resp = &http.Response{StatusCode: tt.code, Body: http.NoBody}
			}
			if got := resilience.IsFailure(tt.req, resp, tt.err); got != tt.want {
				t.Errorf("IsFailure(%s) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// TestIsFailureResponseHeaderTimeout checks a real net/http timeout, which
// matches context.DeadlineExceeded without being a context's error.
func TestIsFailureResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) })
	tr := newTransport(t)
	tr.ResponseHeaderTimeout = 10 * time.Millisecond
	req := httpRequest(t, context.Background())
	req.URL = mustParse(t, srv.URL)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout matching context.DeadlineExceeded", err)
	}
	if !resilience.IsFailure(req, nil, err) || !resilience.IsFailure(nil, nil, err) {
		t.Errorf("IsFailure(%v) = false, want true with and without the request", err)
	}
}

func TestIdempotent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method string
		header string
		want   bool
	}{
		{"", "", true},
		{http.MethodGet, "", true},
		{http.MethodHead, "", true},
		{http.MethodOptions, "", true},
		{http.MethodTrace, "", true},
		{http.MethodPut, "", true},
		{http.MethodDelete, "", true},
		{http.MethodPost, "", false},
		{http.MethodPatch, "", false},
		{"CONNECT", "", false},
		{http.MethodPost, "Idempotency-Key", true},
		{http.MethodPatch, "X-Idempotency-Key", true},
	}
	for _, tt := range tests {
		req := &http.Request{Method: tt.method, Header: http.Header{}}
		if tt.header != "" {
			req.Header[tt.header] = []string{"k1"}
		}
		if got := resilience.Idempotent(req); got != tt.want {
			t.Errorf("Idempotent(%q, %q) = %v, want %v", tt.method, tt.header, got, tt.want)
		}
	}
}

func httpRequest(tb testing.TB, ctx context.Context) *http.Request {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://users/users/42", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// headerTimeout has the shape of net/http's timeout errors.
type headerTimeout struct{}

func (headerTimeout) Error() string        { return "net/http: timeout awaiting response headers" }
func (headerTimeout) Timeout() bool        { return true }
func (headerTimeout) Is(target error) bool { return target == context.DeadlineExceeded }
