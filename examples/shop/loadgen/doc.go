// Package loadgen drives the shop through its gateway at a steady rate with a
// mix of customers (registering, logging in, browsing, ordering, retrying
// with the same Idempotency-Key, cancelling) and then checks the books:
//
//   - for every product it created, the initial stock equals the current
//     stock plus the units in its customers' confirmed orders;
//   - no stock is below zero;
//   - every answer to one Idempotency-Key names the same order, and no
//     customer holds an order that no answer named unless a request of theirs
//     went unanswered;
//   - no order is left pending once a bounded settle wait is over;
//   - a confirmed or cancelled order's total is its units at the products'
//     prices;
//   - every captured payment belongs to a confirmed order of the run, every
//     confirmed order has its captured payment and every cancelled order's
//     payment is refunded (read from the payments service's own API, which
//     the gateway does not route).
//
// Answers are classified as expected (the business answers the mix
// provokes: 402, 409, 422, 404, 401, 403, a log-in's 429, and the 503 with
// Retry-After that the saga may give) or as failures (any other status,
// transport errors). [Run] returns a [Report] with both and every violation;
// examples/cmd/loadgen is its command.
//
// The generator talks to loopback addresses only: its transport refuses to
// dial anything else.
package loadgen
