// Package backoff is the capped exponential backoff with jitter that pier's
// background loops share: registering with a registry, watching one, and
// waiting for an idempotency key held elsewhere.
//
// failsafe-go computes the same delays inside its retry policy, but exports no
// backoff a loop can step through on its own, and these loops are not retries
// of one execution (they run for a Service's life), so the few lines live here
// once instead of in each loop.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields waits that double from a minimum to a maximum, each one half
// its step plus a random part of the other half ("equal jitter"), so that
// many processes that failed together do not retry in step. Its zero value is
// not usable; make one with [New]. A Backoff is not safe for concurrent use:
// each loop owns its own.
type Backoff struct {
	min, max, step time.Duration
}

// New returns a Backoff whose steps double from lo to hi. A lo <= 0 is taken
// as 1 ms, and a hi below lo as lo.
func New(lo, hi time.Duration) *Backoff {
	if lo <= 0 {
		lo = time.Millisecond
	}
	hi = max(hi, lo)
	return &Backoff{min: lo, max: hi, step: lo}
}

// Next returns the next wait, between half the current step and the step, and
// doubles the step up to the maximum.
func (b *Backoff) Next() time.Duration {
	wait := b.step/2 + rand.N(b.step/2+1)
	b.step = min(2*b.step, b.max)
	return wait
}

// Reset starts the steps again from the minimum, after a success.
func (b *Backoff) Reset() { b.step = b.min }
