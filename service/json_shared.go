package service

import (
	"io"

	"github.com/pier-go/pier/internal/problem"
)

// Problem is an RFC 9457 problem details object, written by [WriteProblem] and by
// every error response of the framework. A *Problem is also an error, so a handler
// can return one and match it with errors.As.
type Problem = problem.Problem

// limitedBody is the request body installed by [BodyLimit]: it remembers the
// limit so that [DecodeJSON] can report it and need not impose its own.
type limitedBody struct {
	io.ReadCloser       // an http.MaxBytesReader
	limit         int64 // bytes
}
