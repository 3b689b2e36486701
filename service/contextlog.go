package service

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/internal/requestid"
)

// Attribute keys that NewContextHandler adds to log records.
const (
	traceIDKey   = "trace_id"
	spanIDKey    = "span_id"
	requestIDLog = "request_id"
)

// NewContextHandler returns a slog.Handler that passes every record to h with
// the request's identifiers added from the context it was logged with:
// trace_id and span_id (W3C hex, from trace.SpanContextFromContext, when the
// context carries a valid span context) and request_id (from [RequestID], when
// the context carries one). Log with a context to get them:
//
//	logger.InfoContext(r.Context(), "user loaded", "user", id)
//
// Records logged without a context (logger.Info) are passed on unchanged.
// WithAttrs and WithGroup return handlers that keep adding the identifiers;
// they are added to the record, so under a group opened with WithGroup they
// land in that group. Wrapping a handler that NewContextHandler returned returns
// it unchanged, so the identifiers are never added twice; a nil h is
// slog.DiscardHandler.
//
// A [Service] wraps its logger's handler with it, so its access log and every
// line logged with a request's context carry these identifiers. The handler is
// safe for concurrent use when h is.
func NewContextHandler(h slog.Handler) slog.Handler {
	switch h := h.(type) {
	case nil:
		return &contextHandler{next: slog.DiscardHandler}
	case *contextHandler:
		return h
	default:
		return &contextHandler{next: h}
	}
}

// withContextHandler returns l with its handler wrapped by NewContextHandler;
// nil stays nil.
func withContextHandler(l *slog.Logger) *slog.Logger {
	if l == nil {
		return nil
	}
	if _, ok := l.Handler().(*contextHandler); ok {
		return l
	}
	return slog.New(NewContextHandler(l.Handler()))
}

type contextHandler struct {
	next slog.Handler
}

// Enabled reports whether the wrapped handler handles records at level.
func (h *contextHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds the identifiers that ctx carries to r and passes it on.
func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(
				slog.String(traceIDKey, sc.TraceID().String()),
				slog.String(spanIDKey, sc.SpanID().String()),
			)
		}
		if id := requestid.FromContext(ctx); id != "" {
			r.AddAttrs(slog.String(requestIDLog, id))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a context handler over h's handler with attrs.
func (h *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &contextHandler{next: h.next.WithAttrs(attrs)}
}

// WithGroup returns a context handler over h's handler with the group name.
func (h *contextHandler) WithGroup(name string) slog.Handler {
	return &contextHandler{next: h.next.WithGroup(name)}
}
