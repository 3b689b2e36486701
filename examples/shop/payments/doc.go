// Package payments is the shop's simulated card processor. Stripe's test
// cards decide the outcome: 4242424242424242 (and any other number that
// passes the Luhn check) captures, 4000000000000002 is declined
// (card_declined) and 4000000000009995 too (insufficient_funds).
//
// A charge is made once per reference (the order id) and per Idempotency-Key;
// a refund by reference is made once, and a refund that arrives before its
// charge voids the reference, so that a charge arriving late is refused.
// Options make the processor slow (WithDelay) or failing (WithFailureRate),
// so that the client's retries and breaker can be seen at work.
package payments
