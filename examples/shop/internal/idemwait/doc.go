// Package idemwait hands out the channels the shop's idempotency stores
// (pgidem, sqlidem) return as [idempotency.Record.Changed], and closes them
// when a key's claim ends, so that a repeat waiting in the same process wakes
// at once.
//
// [idempotency.Record.Changed]: https://pkg.go.dev/github.com/pier-go/pier/idempotency#Record
package idemwait
