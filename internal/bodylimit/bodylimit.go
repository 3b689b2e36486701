// Package bodylimit is the request body limit that the service's BodyLimit
// middleware sets and that DecodeJSON and the idempotency middleware read, so
// that a handler sees one limit however many of them wrap the body.
package bodylimit

import (
	"io"
	"net/http"
	"strconv"
)

// Default is the largest request body, in bytes, read when no limit was set:
// service.DefaultBodyLimit.
const Default int64 = 1 << 20

// Body is the request body installed by the BodyLimit middleware: it remembers
// the limit so that readers further in can report it and need not impose their
// own. Limit 0 means the limit was lifted.
type Body struct {
	io.ReadCloser       // an http.MaxBytesReader, unless the limit was lifted
	Limit         int64 // bytes
}

// Detail is the problem detail of a 413 for limit.
func Detail(limit int64) string {
	return "request body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes"
}

// BaseWriter returns the ResponseWriter under w's wrappers (those with an
// Unwrap method), which http.MaxBytesReader needs to close the connection
// when a body runs over its limit.
func BaseWriter(w http.ResponseWriter) http.ResponseWriter {
	for range 32 { // bounded: a wrapper that unwraps to itself must not hang us
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
	return w
}
