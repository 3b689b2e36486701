package resilience

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"
	"github.com/failsafe-go/failsafe-go/policy"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
)

// maxReplayBody is the largest request body without GetBody that Transport
// buffers so that it can send it again.
const maxReplayBody = 1 << 20

var (
	errNotReplayable = errors.New("resilience: the request body cannot be sent again")
	errNoResponse    = errors.New("resilience: the policies returned neither a response nor an error")
)

// Transport returns an [http.RoundTripper] that sends each request through next
// (http.DefaultTransport when nil) under the policies, composed as
// failsafe.With composes them: the first is outermost; nil policies are
// skipped. Any failsafe.Policy[*http.Response] may be mixed in beside those
// this package's builders build; the usual order is retry, hedge, breaker,
// timeout:
//
//	Transport(next,
//		resilience.NewRetryBuilder().Build(),
//		resilience.NewHedgeBuilder(d).Build(),
//		resilience.NewCircuitBreakerBuilder().Build(),
//		resilience.NewTimeoutBuilder(t).Build())
//
// Errors pass through unchanged: failsafe's (such as [circuitbreaker.ErrOpen],
// [budget.ErrExceeded] and [timeout.ErrExceeded]) and next's alike; when the
// retries run out, the caller gets the last real outcome.
//
// # Which requests are sent more than once
//
// Retry and hedge policies apply only to requests that are [Idempotent] and
// whose body can be sent again; every other request runs through the remaining
// policies alone, exactly once. A policy counts as one when failsafe-go's
// retrypolicy or hedgepolicy builders built it, as [NewRetryBuilder] and
// [NewHedgeBuilder] do, or when it wraps one and says so with a method
//
//	Unwrap() failsafe.Policy[*http.Response]
//
// so that a decorator of a user's own is not missed. A body can be sent again
// when the request has none, or has GetBody (http.NewRequest sets it for bytes
// and strings readers), or is at most 1 MiB: such a body is read into memory
// before the first attempt. A larger body without GetBody is streamed once,
// with no retry or hedge. The executors for both kinds of request are built
// here, once.
//
// A request sent once never meets the retry or hedge policy's budget either:
// it takes no permit, is never refused with [budget.ErrExceeded], and is not
// counted among the executions in flight that the budget's rate is a share of.
//
// # Attempts
//
// Each attempt sends next a shallow copy of the request whose context is the
// attempt's: derived from the original's, so values stored in it reach every
// attempt, and canceled when a timeout fires or a hedge loses. A response's
// context stays live until its body is closed, so a timeout bounds the wait for
// headers, not the reading of the body. The body of every response that a
// policy discards (a retried 503, a losing hedge, the last response inside a
// retrypolicy.ExceededError) is drained (up to 4 KiB) and closed, so
// connections are reused and nothing leaks; the request body is closed even
// when no attempt ran.
//
// The returned RoundTripper is safe for concurrent use.
func Transport(next http.RoundTripper, policies ...failsafe.Policy[*http.Response]) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	all := make([]failsafe.Policy[*http.Response], 0, len(policies))
	once := make([]failsafe.Policy[*http.Response], 0, len(policies))
	for _, p := range policies {
		if p == nil {
			continue
		}
		all = append(all, p)
		if !sendsAgain(p) {
			once = append(once, p)
		}
	}
	t := &transport{next: next, direct: len(all) == 0, replays: len(once) < len(all)}
	t.all = failsafe.With(all...)
	t.once = t.all
	if t.replays {
		t.once = failsafe.With(once...)
	}
	return t
}

// sendsAgain reports whether p is a retry or hedge policy, or wraps one.
// failsafe-go's RetryPolicy and HedgePolicy interfaces are just
// failsafe.Policy, which every policy satisfies, but its retry and hedge
// policies keep their builder's methods, Build among them, and no other kind
// of policy builds a RetryPolicy or a HedgePolicy.
func sendsAgain(p failsafe.Policy[*http.Response]) bool {
	for range 32 { // bounded: a policy that unwraps to itself must not hang us
		switch q := p.(type) {
		case interface {
			Build() retrypolicy.RetryPolicy[*http.Response]
		}:
			return true
		case interface {
			Build() hedgepolicy.HedgePolicy[*http.Response]
		}:
			return true
		case interface {
			Unwrap() failsafe.Policy[*http.Response]
		}:
			if p = q.Unwrap(); p == nil {
				return false
			}
		default:
			return false
		}
	}
	return false
}

type transport struct {
	next    http.RoundTripper
	all     failsafe.Executor[*http.Response] // every policy
	once    failsafe.Executor[*http.Response] // all but retry and hedge policies
	replays bool                              // all has a retry or hedge policy
	direct  bool                              // no policies at all
}

// RoundTrip sends req through the policies.
//
// failsafehttp's RoundTripper is not used: it reads every request body into
// memory whatever its size, ignores GetBody, mutates and shares one request
// across attempts, and cannot pick the policies per request. The part of it that
// matters, deferring the attempt's cancellation until the response body is
// closed, is done here the same way.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.direct {
		return t.next.RoundTrip(req)
	}
	c := &call{next: t.next, req: req, body: req.Body, length: -1}
	exec := t.once
	if t.replays && Idempotent(req) {
		replay, err := c.prepare()
		if err != nil {
			return nil, err
		}
		if replay {
			exec = t.all
		}
	}
	if ctx := req.Context(); ctx != context.Background() {
		exec = exec.WithContext(ctx)
	}
	resp, err := exec.GetWithExecution(c.attempt)
	c.closeUnsent()
	if err != nil {
		if resp != nil {
			drainClose(resp) // a RoundTripper returns one or the other
		}
		if e := retrypolicy.AsExceededError(err); e != nil {
			// A retry policy without ReturnLastFailure keeps the last response
			// in its error, where no caller will close it.
			if last, ok := e.LastResult.(*http.Response); ok {
				drainClose(last)
			}
		}
		return nil, err
	}
	if resp == nil {
		return nil, errNoResponse
	}
	return resp, nil
}

// CloseIdleConnections closes next's idle connections, if it has a
// CloseIdleConnections method, so that http.Client.CloseIdleConnections reaches
// it.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// call is one request's journey through the policies.
type call struct {
	next    http.RoundTripper
	req     *http.Request
	body    io.ReadCloser                 // what the first attempt sends: req.Body or its buffered copy
	getBody func() (io.ReadCloser, error) // a fresh body for every later attempt; nil: none
	length  int64                         // the buffered body's length, else -1
	taken   atomic.Bool                   // body has been handed to an attempt
}

// prepare makes the request body replayable and reports whether it is. It
// closes the body when it fails.
func (c *call) prepare() (bool, error) {
	req := c.req
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return true, nil
	case req.GetBody != nil:
		c.getBody = req.GetBody
		return true, nil
	case req.ContentLength > maxReplayBody:
		return false, nil
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(req.Body, maxReplayBody+1)); err != nil {
		_ = req.Body.Close()
		return false, fmt.Errorf("resilience: read request body: %w", err)
	}
	if buf.Len() > maxReplayBody {
		// Too large to keep: send what was read, then the rest, once.
		c.body = &prefixedBody{Reader: io.MultiReader(bytes.NewReader(buf.Bytes()), req.Body), Closer: req.Body}
		return false, nil
	}
	_ = req.Body.Close()
	data := buf.Bytes()
	c.length = int64(len(data))
	c.getBody = func() (io.ReadCloser, error) {
		if len(data) == 0 {
			return http.NoBody, nil
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	c.body, _ = c.getBody()
	return true, nil
}

// prefixedBody is a request body that was partly read ahead.
type prefixedBody struct {
	io.Reader
	io.Closer
}

// nextBody returns the body for an attempt: the request's own for the first,
// a fresh copy for every later one.
func (c *call) nextBody() (io.ReadCloser, error) {
	if c.body == nil || c.body == http.NoBody {
		return c.body, nil
	}
	if c.taken.CompareAndSwap(false, true) {
		return c.body, nil
	}
	if c.getBody == nil {
		return nil, errNotReplayable
	}
	return c.getBody()
}

// closeUnsent closes the request body when no attempt took it (a policy
// rejected the call), as a RoundTripper must.
func (c *call) closeUnsent() {
	if c.body != nil && c.body != http.NoBody && c.taken.CompareAndSwap(false, true) {
		_ = c.body.Close()
	}
}

// attempt sends one attempt.
func (c *call) attempt(exec failsafe.Execution[*http.Response]) (*http.Response, error) {
	if exec.IsRetry() {
		// RetryDelay closes the response it discards; a retry policy with
		// another delay may not. Closing twice is harmless.
		drainClose(exec.LastResult())
	}
	ctx := exec.Context()
	body, err := c.nextBody()
	if err != nil {
		return nil, err
	}
	r := c.req
	if ctx != r.Context() || body != r.Body {
		r = r.WithContext(ctx)
		r.Body = body
		if c.getBody != nil {
			r.GetBody = c.getBody
		}
		if c.length >= 0 {
			r.ContentLength = c.length
		}
	}
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		// Canceled as it answered (a timeout fired, a hedge lost, the caller
		// left): every policy drops this response, so close it here.
		_ = resp.Body.Close()
		return nil, ctx.Err()
	}
	if ctx != c.req.Context() {
		// The attempt has its own context, made by a timeout or hedge policy,
		// which cancels it as soon as the attempt returns unless told to defer.
		if ei, ok := exec.(policy.ExecutionInternal[*http.Response]); ok {
			resp.Body = newCancelBody(resp.Body, ei.DeferCancel())
		}
	}
	return resp, nil
}

// cancelBody cancels its attempt's context when it is closed.
type cancelBody struct {
	io.ReadCloser
	cancel func()
	closed atomic.Bool
}

// cancelBodyWriter is a cancelBody over a writable body (101 Switching
// Protocols), which must stay writable.
type cancelBodyWriter struct {
	*cancelBody
	io.Writer
}

func newCancelBody(body io.ReadCloser, cancel func()) io.ReadCloser {
	cb := &cancelBody{ReadCloser: body, cancel: cancel}
	if w, ok := body.(io.Writer); ok {
		return cancelBodyWriter{cb, w}
	}
	return cb
}

// Close closes the body, then releases the attempt's context.
func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	if b.closed.CompareAndSwap(false, true) {
		b.cancel()
	}
	return err
}
