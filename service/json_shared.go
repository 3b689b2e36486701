package service

import (
	"io"
)

// limitedBody is the request body installed by [BodyLimit]: it remembers the
// limit so that [DecodeJSON] can report it and need not impose its own.
type limitedBody struct {
	io.ReadCloser       // an http.MaxBytesReader
	limit         int64 // bytes
}
