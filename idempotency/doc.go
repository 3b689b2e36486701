// Package idempotency makes a request carrying an Idempotency-Key header run at
// most once per key, so that clients can retry a POST safely.
//
// [Middleware] wraps any http.Handler. The first request with a key claims it
// in a [Store] and runs the handler; its answer is kept, and every repeat with
// the same key and the same request gets that answer back byte for byte, marked
// Idempotent-Replayed: true, without running the handler. A repeat that arrives
// while the first still runs waits for it; the same key sent with another
// request is refused with 422. Instances that share a Store run each key once
// among them all.
//
//	store, err := idempotency.NewMemoryStore()
//	...
//	keys, err := idempotency.Middleware(store)
//	...
//	svc, err := service.New("payments", service.WithMiddleware(keys))
//
// A key lives in a scope, by default the method and path. The default leaves
// the caller out: two callers that send the same key with the same request
// share one answer. Behind authentication, put the caller in the scope with
// [WithCallerScope], which refuses keyed requests that come without one.
//
// [MemoryStore] serves the instances of one process. Across processes,
// implement [Store] over a shared database: its three methods are
// compare-and-set steps (see [Store] for SQL and Redis shapes).
//
// pier's client ([github.com/pier-go/pier/discovery.NewClient]) retries a POST
// that carries the header as if it were idempotent, and with
// discovery.WithIdempotencyKeys gives every POST a key of its own.
//
// The package imports no other pier package but problem, so a server that is
// not a pier Service can use it alone.
package idempotency
