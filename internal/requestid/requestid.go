// Package requestid carries a request's ID, and the trace ID of the span that
// serves it, in its context, and makes new IDs.
//
// It is internal so that every pier package (service, health, resilience, problem,
// gateway) can read the IDs the service middleware stored without importing
// service or OpenTelemetry: the problem package fills a problem's trace_id from
// here, which keeps OpenTelemetry out of the leaf packages that write problems.
package requestid

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
)

// Header is the HTTP header that carries a request ID.
const Header = "X-Request-ID"

// MaxLen is the longest incoming request ID that is accepted.
const MaxLen = 128

type ctxKey struct{}

// ids is the context value: one allocation per request for both IDs. trace is
// set once, by the goroutine that made the context, before the handler runs.
type ids struct {
	request string
	trace   [16]byte
}

// NewContext returns a copy of ctx that carries id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, &ids{request: id})
}

// FromContext returns the request ID carried by ctx, or "".
func FromContext(ctx context.Context) string {
	if v, _ := ctx.Value(ctxKey{}).(*ids); v != nil {
		return v.request
	}
	return ""
}

// SetTraceID records the trace ID of the request's span in the value that
// [NewContext] put in ctx; without one it does nothing. It must be called
// before ctx is shared with other goroutines: the server calls it right after
// starting the request's span.
func SetTraceID(ctx context.Context, trace [16]byte) {
	if v, _ := ctx.Value(ctxKey{}).(*ids); v != nil {
		v.trace = trace
	}
}

// TraceIDFromContext returns the trace ID recorded with [SetTraceID] as 32
// lowercase hex digits, or "" when none was.
func TraceIDFromContext(ctx context.Context) string {
	v, _ := ctx.Value(ctxKey{}).(*ids)
	if v == nil || v.trace == ([16]byte{}) {
		return ""
	}
	return hex.EncodeToString(v.trace[:])
}

// New returns a fresh 128-bit random ID as 32 lowercase hex characters.
//
// It uses math/rand/v2's runtime source (ChaCha8 per thread): request IDs must be
// unique, not secret, and this costs no system call and takes no lock.
func New() string {
	var raw [16]byte
	for i := 0; i < 16; i += 8 {
		u := rand.Uint64()
		for j := range 8 {
			raw[i+j] = byte(u >> (8 * j))
		}
	}
	var out [32]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}

// Valid reports whether an incoming ID is safe to adopt: 1 to MaxLen characters,
// each a letter, a digit or one of - _ . : / + =. Anything else (spaces, quotes,
// control characters, non-ASCII) could forge log lines or headers downstream.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=':
		default:
			return false
		}
	}
	return true
}
