package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/internal/bodylimit"
	"github.com/pier-go/pier/internal/requestid"
	"github.com/pier-go/pier/problem"
)

// RequestIDHeader is the header that carries a request's ID, in both directions.
const RequestIDHeader = requestid.Header

// requestIDKey is RequestIDHeader in canonical form, for direct use of header
// maps without canonicalising on every request.
const requestIDKey = "X-Request-Id"

// RequestIDFromContext returns the ID that [RequestID] stored in ctx, or "" when
// there is none.
func RequestIDFromContext(ctx context.Context) string {
	return requestid.FromContext(ctx)
}

// Recover returns middleware that turns a panicking handler into a 500 problem
// response, logs the panic with its stack at Error on logger, and keeps the
// server serving. When the handler had already started its response, the
// connection is aborted instead (a truncated answer must not look complete).
// http.ErrAbortHandler passes through untouched, as net/http expects. The
// problem and the log line carry the request ID and, inside a [Service], the
// trace ID of the request's span (the log line through [NewContextHandler],
// which wraps logger's handler). A nil logger discards the log. The middleware
// is safe for concurrent use.
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = withContextHandler(logger)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec, _ := record(w)
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler { // net/http compares it the same way
					panic(v)
				}
				// The request ID and the span are made inside this middleware,
				// so they are found on the response header and the recorder
				// (see telemetry.finish) rather than in r's context.
				ctx := r.Context()
				if id := rec.Header().Get(RequestIDHeader); id != "" && requestid.FromContext(ctx) == "" {
					ctx = requestid.NewContext(ctx, id)
				}
				if rec.traceID.IsValid() && !trace.SpanContextFromContext(ctx).IsValid() {
					ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
						TraceID: rec.traceID, SpanID: rec.spanID,
					}))
				}
				logger.LogAttrs(ctx, slog.LevelError, "panic serving request",
					slog.Any("panic", v),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("stack", string(debug.Stack())),
				)
				if rec.wroteHeader {
					panic(http.ErrAbortHandler)
				}
				p := problem.Problem{
					Status: http.StatusInternalServerError,
					Detail: "the server failed to handle the request",
				}
				if rec.traceID.IsValid() {
					p.TraceID = rec.traceID.String()
				}
				problem.Write(rec, r.WithContext(ctx), p)
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// RequestID returns middleware that gives every request an ID: the incoming
// X-Request-ID when it is sane (1 to 128 characters of letters, digits and
// - _ . : / + =), a new random 128-bit hex ID otherwise. The ID is stored in the
// request's context ([RequestIDFromContext]) and set on the response header. The
// middleware is safe for concurrent use.
func RequestID() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r2 := r.WithContext(withRequestID(w, r))
			next.ServeHTTP(w, r2)
			r.Pattern = r2.Pattern // hand the matched route back out, as ServeMux does
		})
	}
}

// withRequestID returns r's context with the request's ID, the incoming one
// when it is sane or else a new one, and sets it on w's header.
func withRequestID(w http.ResponseWriter, r *http.Request) context.Context {
	var id string
	if v := r.Header[requestIDKey]; len(v) == 1 && requestid.Valid(v[0]) {
		id = v[0]
	} else {
		id = requestid.New()
	}
	w.Header()[requestIDKey] = []string{id}
	return requestid.NewContext(r.Context(), id)
}

// withDeadline bounds ctx by d from now (nothing when d <= 0) or, when adopt
// is set and the caller sent its remaining budget in discovery.TimeoutHeader,
// by that budget if it is smaller. cancel is nil when nothing bounds ctx.
func withDeadline(ctx context.Context, h http.Header, d time.Duration, adopt bool) (_ context.Context, cancel context.CancelFunc) {
	limit, bounded := d, d > 0
	if adopt {
		if budget, ok := callerBudget(h); ok && (!bounded || budget < limit) {
			limit, bounded = budget, true // a budget of 0 is spent: the deadline has passed
		}
	}
	if !bounded {
		return ctx, nil
	}
	return context.WithTimeout(ctx, limit)
}

// AccessLog returns middleware that logs one line per request on logger, after
// the handler returns: method, path, route (the ServeMux pattern that matched,
// such as "GET /users/{id}"), status, bytes written and duration, plus the
// request_id, trace_id and span_id that the request's context carries, added by
// [NewContextHandler], with which AccessLog wraps logger's handler (unless it
// is one already). It logs at Info, or at Error when the status is 5xx or the
// handler panicked. A nil logger logs nothing. The middleware is safe for
// concurrent use.
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return accessLog(withContextHandler(logger), nil)
}

// accessLog is AccessLog with quiet: requests for which it reports true (the
// health probes, polled every few seconds) are logged at Debug unless they fail.
// logger's handler must add the request ID (NewContextHandler does).
func accessLog(logger *slog.Logger, quiet func(route string) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if logger == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec, _ := record(w)
			returned := false
			defer func() {
				status := rec.status
				switch {
				case !returned && !rec.wroteHeader:
					status = http.StatusInternalServerError // panicking: Recover answers 500
				case status == 0:
					status = http.StatusOK // net/http's answer to a handler that wrote nothing
				}
				route := rec.route
				if route == "" {
					route = r.Pattern
				}
				level := slog.LevelInfo
				if status >= 500 || !returned {
					level = slog.LevelError
				} else if quiet != nil && quiet(route) {
					level = slog.LevelDebug
				}
				ctx := r.Context()
				if !logger.Enabled(ctx, level) {
					return
				}
				attrs := [...]slog.Attr{
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("route", route),
					slog.Int("status", status),
					slog.Int64("bytes", rec.bytes),
					slog.Duration("duration", time.Since(start)),
					slog.Bool("panic", !returned),
				}
				n := len(attrs)
				if returned {
					n-- // the panic attribute only when there was one
				}
				logger.LogAttrs(ctx, level, "request", attrs[:n]...)
			}()
			next.ServeHTTP(rec, r)
			returned = true
		})
	}
}

// Timeout returns middleware that bounds each request's context by d. Handlers
// must honour ctx.Done() (every net/http, database/sql and pier client call
// does); when a handler returns after the deadline without having written a
// response, the middleware answers 503 with a problem body. A handler that had
// already started its response keeps it. The deadline also bounds reading the
// request body: a body that has not arrived by then fails to read, and
// [DecodeJSON] answers 408. Unlike http.TimeoutHandler it buffers
// nothing and starts no goroutine, so streaming responses work. d <= 0 returns
// middleware that does nothing. The middleware is safe for concurrent use.
func Timeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if d <= 0 {
			return next
		}
		answer := answerLate(d)(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			bodyDeadline(ctx, w, r)
			r2 := r.WithContext(ctx)
			answer.ServeHTTP(w, r2)
			r.Pattern = r2.Pattern
		})
	}
}

// bodyDeadline makes ctx's deadline the read deadline of r's body, so that
// the request's deadline also bounds a body that arrives slowly: net/http sets
// none past the headers. net/http clears it when the body has been read to its
// end. A request without a body is left alone: net/http is already reading its
// connection, to notice the client leaving, and a deadline there would end the
// context of this request and every later one on the connection.
func bodyDeadline(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = http.NewResponseController(w).SetReadDeadline(dl) // not every writer can
	}
}

// callerBudget reads the caller's remaining time budget from
// discovery.TimeoutHeader: whole milliseconds, at most a day. A malformed value
// is ignored: the service's own timeout still bounds the request.
func callerBudget(h http.Header) (time.Duration, bool) {
	v := h[timeoutKey]
	if len(v) != 1 {
		return 0, false
	}
	ms, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || ms < 0 || ms > 24*60*60*1000 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// timeoutKey is discovery.TimeoutHeader in canonical form.
const timeoutKey = "X-Pier-Timeout-Ms"

// answerLate returns middleware that answers 503 for a handler that returns
// past its context's deadline without having written anything: the answering
// half of Timeout, which the Service places inside its access log so the log
// sees the 503, while the Service's begin sets the deadline further out. d is
// the limit named in the answer; d <= 0 names none.
func answerLate(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		detail := "the request did not complete within its deadline"
		if d > 0 {
			detail = "the request did not complete within " + d.String()
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec, _ := record(w)
			next.ServeHTTP(rec, r)
			if !rec.wroteHeader && errors.Is(r.Context().Err(), context.DeadlineExceeded) {
				problem.Write(rec, r, problem.Problem{Status: http.StatusServiceUnavailable, Detail: detail})
			}
		})
	}
}

// BodyLimit returns middleware that limits request bodies to n bytes. A request
// whose Content-Length exceeds n gets 413 with a problem body before the handler
// runs; a body that grows past n while being read (chunked encoding) fails the
// read with *http.MaxBytesError, which [DecodeJSON] answers with 413, and the
// server closes the connection after the response. n <= 0 lifts the limit,
// including the [DefaultBodyLimit] that DecodeJSON applies to a body no BodyLimit
// has bounded. The middleware is safe for concurrent use.
func BodyLimit(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		tooLarge := bodylimit.Detail(n)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n > 0 && r.ContentLength > n {
				problem.Write(w, r, problem.Problem{Status: http.StatusRequestEntityTooLarge, Detail: tooLarge})
				return
			}
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r) // nothing to limit: no copy of the request
				return
			}
			r2 := *r
			body := &bodylimit.Body{ReadCloser: r.Body} // no limit: DecodeJSON adds none
			if n > 0 {
				// MaxBytesReader tells the server to close the connection once the
				// limit is hit, through a method only net/http's own writer has.
				body = &bodylimit.Body{ReadCloser: http.MaxBytesReader(bodylimit.BaseWriter(w), r.Body, n), Limit: n}
			}
			r2.Body = body
			next.ServeHTTP(w, &r2)
			r.Pattern = r2.Pattern
		})
	}
}

// recorder is the one ResponseWriter wrapper of the built-in stack. Each
// middleware that needs to know what was written reuses the recorder an outer
// one made (see record), so the stack allocates one wrapper per request however
// many of them watch the response.
type recorder struct {
	http.ResponseWriter
	status      int    // the final status written, 0 until then
	bytes       int64  // body bytes written
	wroteHeader bool   // a final (non-1xx) status has been sent
	route       string // the ServeMux pattern that matched, set by routeRecorder

	rt *routeTelemetry // the matched route's, set by routeRecorder

	// unrouted is the request while the Service's mux may answer it itself
	// (no route has matched yet): an error status written then is the mux's
	// 404 or 405, which WriteHeader turns into a problem (see Service.routes).
	unrouted *http.Request

	// The request's span, set for Recover when the handler panics (see
	// telemetry.finish).
	traceID trace.TraceID
	spanID  trace.SpanID
}

// record returns w when it is a recorder, else a new recorder around w.
func record(w http.ResponseWriter) (*recorder, bool) {
	if rec, ok := w.(*recorder); ok {
		return rec, false
	}
	return &recorder{ResponseWriter: w}, true
}

// findRecorder follows Unwrap from w to the first recorder, or nil.
func findRecorder(w http.ResponseWriter) *recorder {
	for range 32 {
		if rec, ok := w.(*recorder); ok {
			return rec
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// WriteHeader records the final status and passes code on, or writes the
// problem that replaces the mux's own error answer (see Service.routes).
func (rec *recorder) WriteHeader(code int) {
	if rec.unrouted != nil && code >= 400 && !rec.wroteHeader {
		r := rec.unrouted
		rec.unrouted = nil
		writeMuxError(rec, r, code)
		rec.ResponseWriter = bodyless{rec.ResponseWriter}
		return
	}
	if rec.wroteHeader {
		rec.ResponseWriter.WriteHeader(code) // net/http logs the superfluous call
		return
	}
	// 1xx answers (103 Early Hints) may precede the final one; 101 ends HTTP.
	if code >= 200 || code == http.StatusSwitchingProtocols {
		rec.status = code
		rec.wroteHeader = true
	}
	rec.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and the bytes written.
func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.status = http.StatusOK
		rec.wroteHeader = true
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path for io.Copy from a file.
func (rec *recorder) ReadFrom(src io.Reader) (int64, error) {
	if !rec.wroteHeader {
		rec.status = http.StatusOK
		rec.wroteHeader = true
	}
	var n int64
	var err error
	if rf, ok := rec.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(rec.ResponseWriter, src)
	}
	rec.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// Flush implements http.Flusher for handlers that assert it rather than use
// http.ResponseController.
func (rec *recorder) Flush() {
	if !rec.wroteHeader {
		rec.status = http.StatusOK
		rec.wroteHeader = true
	}
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker for handlers that assert it (WebSocket
// libraries). After a hijack the connection is the handler's, so the recorder
// counts the response as written.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil && !rec.wroteHeader {
		rec.status = http.StatusSwitchingProtocols
		rec.wroteHeader = true
	}
	if err != nil {
		err = fmt.Errorf("service: hijack: %w", err)
	}
	return conn, rw, err
}
