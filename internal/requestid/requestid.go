// Package requestid carries a request's ID in its context and makes new IDs.
//
// It is internal so that every pier package (service, health, resilience, gateway)
// can read the ID the service middleware stored without importing service.
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

// NewContext returns a copy of ctx that carries id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the request ID carried by ctx, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
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
