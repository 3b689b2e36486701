// Package orders is the shop's orders service: it places an order as a saga
// across the users, products and payments services, cancels it exactly once,
// and shows a caller their own orders.
//
// Placing an order (POST /orders): the order is recorded PENDING; the caller
// is confirmed through users; every item's stock is reserved through products
// under a reservation id derived from the order and the product, so that a
// retry never reserves twice, at the price products answers with; the total is
// charged through payments under an Idempotency-Key derived from the order;
// the order is then CONFIRMED. Each failure is compensated:
//
//   - short stock (or an unknown product): what was reserved is released and
//     the order row deleted; 409 (404).
//   - a declined card: the stock is released and the order kept REJECTED with
//     the processor's reason; 402.
//   - an answer that cannot be decided now (payments down, its breaker open,
//     5xx after retries): a charge that may have been made is refunded by its
//     reference, the stock is released and the order row deleted; 503 with
//     Retry-After.
//
// Cancelling (POST /orders/{id}/cancel) moves a CONFIRMED order to CANCELLED
// with one conditional UPDATE, then refunds and releases; payments and
// products do each of those once per reference and reservation id, so asking
// again, even at the same time, changes nothing more.
//
// POST /orders takes an Idempotency-Key, scoped to the caller and kept in the
// orders database, so a retried order is placed once even across a restart.
package orders
