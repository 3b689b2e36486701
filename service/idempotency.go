package service

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pier-go/pier/problem"
	"github.com/pier-go/pier/resilience"
)

// IdempotencyKeyHeader is the request header that carries an idempotency key:
// an opaque string a client picks for one operation and sends again with every
// retry of it. It is [resilience.IdempotencyKeyHeader], which makes the pier
// client retry the request.
const IdempotencyKeyHeader = resilience.IdempotencyKeyHeader

// IdempotentReplayedHeader is set to "true" on an answer that [IdempotencyKeys]
// replayed from its store instead of running the handler.
const IdempotentReplayedHeader = "Idempotent-Replayed"

// Defaults of [IdempotencyKeys] and [NewMemoryIdempotencyStore]. Each can be
// changed with the option named beside it.
const (
	// DefaultIdempotencyMaxBody is the largest response body, in bytes, that
	// IdempotencyKeys keeps for replay ([WithIdempotencyMaxBody]).
	DefaultIdempotencyMaxBody int64 = 1 << 20
	// DefaultIdempotencyLease is how long a claim on a key lasts when its holder
	// neither completes nor releases it ([WithIdempotencyLease]): twice the
	// default request timeout, so that a handler that honours its deadline
	// always finishes inside its lease.
	DefaultIdempotencyLease = time.Minute
	// DefaultMemoryStoreKeys is the most keys a MemoryIdempotencyStore holds
	// ([WithMemoryStoreMaxKeys]).
	DefaultMemoryStoreKeys = 10_000
	// DefaultMemoryStoreBytes is the most bytes of responses (bodies, headers
	// and keys) a MemoryIdempotencyStore holds ([WithMemoryStoreMaxBytes]).
	DefaultMemoryStoreBytes int64 = 64 << 20
	// DefaultMemoryStoreRetention is how long a MemoryIdempotencyStore keeps a
	// completed key ([WithMemoryStoreRetention]): 24 h, as Stripe does.
	DefaultMemoryStoreRetention = 24 * time.Hour
)

// ErrIdempotencyClaimLost is what an [IdempotencyStore] returns from Complete
// or Release when the token no longer holds the key: its lease ran out and
// another request claimed the key, or the store dropped it.
var ErrIdempotencyClaimLost = errors.New("service: idempotency claim lost")

// IdempotencyStore keeps the state of idempotency keys for [IdempotencyKeys].
// A key is absent (never seen, released or expired), in progress (claimed by a
// request whose handler runs; the claim lasts for a lease) or completed (the
// first answer is kept for the store's retention).
//
// Claim is one atomic step, which is what makes a key run at most once: several
// instances of a service that share one store (Redis, SQL) run each key once
// among them all. Each method maps onto a compare-and-set: in Redis, small
// scripts that SET the key with NX and PX (the lease) or else GET it, and
// that check the token before a SET with the retention as expiry (Complete)
// or a DEL (Release); in SQL, INSERT ... ON CONFLICT DO NOTHING followed by a
// SELECT in one transaction, and UPDATE or DELETE ... WHERE token = $1.
//
// Waiting is the middleware's: no method waits for a key that another request
// holds, and ctx bounds only the store's own I/O. While a key is in progress
// the middleware calls Claim again, woken by [IdempotencyRecord.Changed] when
// the store can notify (the memory store can) and otherwise polling with
// exponential backoff and jitter (10 ms growing to 500 ms). Stores need no
// goroutine and no subscription to be correct.
//
// Keys are opaque byte strings: the middleware's scope (method and path by
// default), a newline and the client's key. A store that cannot hold any byte
// should hash them. Responses are immutable once passed to Complete: neither
// the store nor the middleware modifies one, so a store may hand the same
// value to every replay. Implementations must be safe for concurrent use.
type IdempotencyStore interface {
	// Claim claims key for the caller unless another claim holds it or a
	// response is kept for it. When the key is absent, or its last claim's
	// lease has run out, Claim records fingerprint and a new token for lease and
	// returns them, Token set. Otherwise it changes nothing and returns what it
	// holds, Token empty: the fingerprint of the request that claimed the key,
	// and its response once completed. A lease <= 0 means
	// [DefaultIdempotencyLease].
	Claim(ctx context.Context, key, fingerprint string, lease time.Duration) (IdempotencyRecord, error)
	// Complete replaces the claim that token holds on key with resp, kept for
	// the store's retention, and closes the Changed channel it handed out for
	// the claim, if any. It returns [ErrIdempotencyClaimLost] when token does
	// not hold key.
	Complete(ctx context.Context, key, token string, resp *IdempotencyResponse) error
	// Release drops the claim that token holds on key, so that the next Claim
	// succeeds, and closes the claim's Changed channel, if any. It returns
	// [ErrIdempotencyClaimLost] when token does not hold key.
	Release(ctx context.Context, key, token string) error
}

// IdempotencyRecord is what [IdempotencyStore.Claim] found or made for a key.
type IdempotencyRecord struct {
	// Token is set when the caller now holds the key: pass it to Complete or
	// Release. It is empty when another request holds or held the key.
	Token string
	// Fingerprint identifies the request that claimed the key (its method,
	// path, query and a SHA-256 of its body).
	Fingerprint string
	// Response is the first answer once the key is completed, nil while it is
	// in progress.
	Response *IdempotencyResponse
	// Changed, for a key in progress, may be a channel that the store closes
	// when the claim ends (completed, released or dropped). Nil makes the
	// middleware poll.
	Changed <-chan struct{}
}

// IdempotencyResponse is an answer kept for replay: the status and body, and
// the headers the handler set (not those that outer middleware such as
// [RequestID] had set before it ran). Trailers are not kept.
type IdempotencyResponse struct {
	Status int         // the final status, never 1xx
	Header http.Header // in canonical form
	Body   []byte
}

// IdempotencyOption configures [IdempotencyKeys].
type IdempotencyOption func(*idempotencyConfig)

type idempotencyConfig struct {
	maxBody int64
	lease   time.Duration
	scope   func(*http.Request) string
}

// WithIdempotencyMaxBody sets the largest response body, in bytes, that is kept
// for replay. The client still receives a larger response in full, but it is
// not kept and the key is released, so a retry runs the handler again: set it
// above the largest answer of every route that takes keys. The default is
// [DefaultIdempotencyMaxBody], 1 MiB; n <= 0 keeps it.
func WithIdempotencyMaxBody(n int64) IdempotencyOption {
	return func(c *idempotencyConfig) {
		if n > 0 {
			c.maxBody = n
		}
	}
}

// WithIdempotencyScope sets the function that names the space a key lives in:
// the same key in two scopes is two keys. The default is the method and path
// ("POST /orders"), so that a key reused on another route does not replay this
// route's answer. Behind authentication, add the caller (a user or tenant ID
// from a verified header or token): otherwise two clients that pick the same
// key for the same request would share one answer. A nil f keeps the default.
func WithIdempotencyScope(f func(*http.Request) string) IdempotencyOption {
	return func(c *idempotencyConfig) {
		if f != nil {
			c.scope = f
		}
	}
}

// WithIdempotencyLease sets how long a claim holds its key when its request
// neither completes nor releases it (the instance died, or the handler ignores
// its context): until then, repeats wait or get 409; after it, the next repeat
// runs the handler. A request with a later deadline holds its claim until that
// deadline and a few seconds more, so a handler that honours its context never
// outlives its claim. The default is [DefaultIdempotencyLease], 1 min; d <= 0
// keeps it.
func WithIdempotencyLease(d time.Duration) IdempotencyOption {
	return func(c *idempotencyConfig) {
		if d > 0 {
			c.lease = d
		}
	}
}

func defaultIdempotencyScope(r *http.Request) string { return r.Method + " " + r.URL.Path }

// Timings of the middleware that no option changes.
const (
	// idempotencyPollMin and idempotencyPollMax bound the backoff between two
	// Claims of a request that waits for a key held elsewhere.
	idempotencyPollMin = 10 * time.Millisecond
	idempotencyPollMax = 500 * time.Millisecond
	// idempotencyLeaseMargin is what a lease stretched to the request's deadline
	// adds for answering and calling Complete.
	idempotencyLeaseMargin = 5 * time.Second
	// idempotencyStoreTimeout bounds Complete and Release, which run after the
	// handler with a context that the end of the request does not cancel.
	idempotencyStoreTimeout = 5 * time.Second
)

// IdempotencyKeys returns middleware that makes requests carrying an
// Idempotency-Key header run at most once per key (within the store's
// retention), so a client can retry a POST or PATCH safely, on this instance or
// on another that shares the store. A nil store means a new
// [MemoryIdempotencyStore] with its defaults, which serves one instance.
//
// A request without the header passes through untouched, at the cost of a
// header lookup. So does a request with a safe method (GET, HEAD, OPTIONS,
// TRACE), which has nothing to protect; every other method takes keys. A key
// must be 1 to 255 printable ASCII characters and sent once; anything else gets
// a 400 problem.
//
// For a keyed request the middleware reads the body into memory, up to the
// request's limit ([BodyLimit], else [DefaultBodyLimit], which also bounds a
// body whose limit was lifted, as it must be held; 413 past it) and hands
// the handler a copy, and fingerprints the request: method, path, query and a
// SHA-256 of the body. The key is looked up in its scope
// ([WithIdempotencyScope]):
//
//   - Absent: the request claims it and the handler runs. Its answer streams to
//     the client as usual while a copy is kept (status, the headers the handler
//     set, body); when the handler returns the answer is stored, and every
//     repeat gets it byte for byte with Idempotent-Replayed: true.
//   - Claimed or completed by a request with another fingerprint: 422 problem,
//     "Idempotency-Key reused with a different request".
//   - Completed: the stored answer is replayed; the handler does not run.
//   - In progress (here or on another instance): the request waits until the
//     first completes and then replays its answer, or until the first is
//     released or its lease runs out and then claims the key itself. If the
//     request's context ends first, 409 problem, "a request with this
//     Idempotency-Key is in progress": the client may retry later.
//
// An answer that invites a retry is not stored: 429, 502, 503 and 504 (the
// failures pier's client retries), a panic, a hijacked connection, a handler
// that wrote nothing before its context ended, and a body larger than
// [WithIdempotencyMaxBody]. The key is released instead, so the retry runs the
// handler. Every other answer is stored, 500 included: a handler that failed
// may have had side effects, and running it again is what the key is there to
// prevent. A failing store is answered with a 503 problem before the handler
// runs; a Complete or Release that fails afterwards has nothing left to tell the
// client (a store that wants its failures logged logs them itself), and the
// claim lapses after its lease.
//
// At most once rests on the lease: a handler that outlives its claim
// ([WithIdempotencyLease]) can run twice. Inside a [Service], put the
// middleware in [WithMiddleware]: it then sits inside the request timeout and
// body limit, and behind the request ID, which replays do not copy.
//
// The middleware starts no goroutine and is safe for concurrent use.
func IdempotencyKeys(store IdempotencyStore, opts ...IdempotencyOption) func(http.Handler) http.Handler {
	cfg := idempotencyConfig{
		maxBody: DefaultIdempotencyMaxBody,
		lease:   DefaultIdempotencyLease,
		scope:   defaultIdempotencyScope,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if store == nil {
		store = NewMemoryIdempotencyStore()
	}
	return func(next http.Handler) http.Handler {
		return &idempotency{next: next, store: store, cfg: cfg}
	}
}

// idempotencyKey is IdempotencyKeyHeader in canonical form.
const idempotencyKey = "Idempotency-Key"

type idempotency struct {
	next  http.Handler
	store IdempotencyStore
	cfg   idempotencyConfig
}

func (m *idempotency) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	keys, ok := r.Header[idempotencyKey]
	if !ok || isSafeMethod(r.Method) {
		m.next.ServeHTTP(w, r)
		return
	}
	m.serveKeyed(w, r, keys)
}

func isSafeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// validIdempotencyKey reports whether k is 1 to 255 printable ASCII characters.
// net/http has trimmed the white space around it already.
func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func (m *idempotency) serveKeyed(w http.ResponseWriter, r *http.Request, keys []string) {
	switch {
	case len(keys) != 1:
		problem.Status(w, r, http.StatusBadRequest, "send one Idempotency-Key header, not "+strconv.Itoa(len(keys)))
		return
	case !validIdempotencyKey(keys[0]):
		problem.Status(w, r, http.StatusBadRequest, "Idempotency-Key must be 1 to 255 printable ASCII characters")
		return
	}
	fp, body, keep, err := readKeyedBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			problem.Status(w, r, http.StatusRequestEntityTooLarge, tooLargeDetail(tooLarge))
		} else {
			problem.Status(w, r, http.StatusBadRequest, "the request body could not be read")
		}
		return
	}
	// The client's key never holds a newline, so the last one in the store key
	// divides it from the scope, whatever the scope holds.
	key := m.cfg.scope(r) + "\n" + keys[0]

	ctx := r.Context()
	lease := m.cfg.lease
	if dl, ok := ctx.Deadline(); ok {
		lease = max(lease, time.Until(dl)+idempotencyLeaseMargin)
	}
	backoff := idempotencyPollMin
	for {
		rec, err := m.store.Claim(ctx, key, fp, lease)
		switch {
		case err != nil:
			problem.Status(w, r, http.StatusServiceUnavailable, "the idempotency key store is unavailable")
			return
		case rec.Token != "":
			r2 := *r
			if r.Body != nil && r.Body != http.NoBody {
				r2.Body = &limitedBody{ReadCloser: io.NopCloser(bytes.NewReader(body)), limit: keep}
			}
			m.run(w, &r2, key, rec.Token)
			r.Pattern = r2.Pattern
			return
		case rec.Fingerprint != fp:
			problem.Status(w, r, http.StatusUnprocessableEntity, "Idempotency-Key reused with a different request")
			return
		case rec.Response != nil:
			replay(w, r, rec.Response)
			return
		}
		// In progress elsewhere. A store that notifies wakes us; the timer then
		// only notices a lease that ran out. Otherwise poll, with jitter so that
		// many waiters do not hit a shared store in step.
		wait := backoff
		if rec.Changed != nil {
			wait = idempotencyPollMax
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			problem.Status(w, r, http.StatusConflict, "a request with this Idempotency-Key is in progress")
			return
		case <-rec.Changed:
		case <-t.C:
		}
		t.Stop()
		backoff = min(2*backoff, idempotencyPollMax)
	}
}

// readKeyedBody reads r's body, up to its limit, and fingerprints r: the hex
// SHA-256 of "METHOD escaped-path?raw-query\n" followed by the body. The
// escaped path and the raw query hold no space or newline, so no two requests
// hash the same text. The text is built in one buffer that the body is read
// into, so the hash needs neither a copy nor a hasher on the heap.
//
// keep is the limit to hand on with the body: BodyLimit's, or 0 when it was
// lifted, so that DecodeJSON reports the same limit and adds none of its own.
func readKeyedBody(w http.ResponseWriter, r *http.Request) (fp string, body []byte, keep int64, err error) {
	var src io.Reader
	limit := DefaultBodyLimit
	keep = DefaultBodyLimit
	switch b := r.Body.(type) {
	case nil:
		src = http.NoBody
	case *limitedBody:
		if b.limit > 0 {
			src, limit, keep = b, b.limit, b.limit // BodyLimit's reader enforces it
			break
		}
		keep = 0 // lifted: hand it on lifted, though it is held to the default here
		src = http.MaxBytesReader(baseWriter(w), b, limit)
	default:
		if b != http.NoBody {
			src = http.MaxBytesReader(baseWriter(w), b, limit)
		} else {
			src = b
		}
	}
	if r.ContentLength > limit {
		return "", nil, 0, &http.MaxBytesError{Limit: limit}
	}
	path := r.URL.EscapedPath()
	head := len(r.Method) + 1 + len(path) + 1 + len(r.URL.RawQuery) + 1
	buf := bytes.NewBuffer(make([]byte, 0, head+int(max(r.ContentLength, 0))+bytes.MinRead))
	buf.WriteString(r.Method)
	buf.WriteByte(' ')
	buf.WriteString(path)
	buf.WriteByte('?')
	buf.WriteString(r.URL.RawQuery)
	buf.WriteByte('\n')
	if _, err := buf.ReadFrom(src); err != nil {
		return "", nil, 0, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), buf.Bytes()[head:], keep, nil
}

// run serves r, which holds key through token, and completes or releases the
// key after.
func (m *idempotency) run(w http.ResponseWriter, r *http.Request, key, token string) {
	iw := &idempotencyWriter{ResponseWriter: w, before: w.Header().Clone(), max: m.cfg.maxBody}
	returned := false
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), idempotencyStoreTimeout)
		defer cancel()
		var resp *IdempotencyResponse
		if returned {
			resp = iw.response(r.Context())
		} // else the handler panicked: the panic goes on up, the key is released
		if resp == nil {
			_ = m.store.Release(ctx, key, token)
		} else {
			_ = m.store.Complete(ctx, key, token, resp)
		}
	}()
	m.next.ServeHTTP(iw, r)
	returned = true
}

// replay writes a stored answer.
func replay(w http.ResponseWriter, r *http.Request, resp *IdempotencyResponse) {
	h := w.Header()
	n := 0
	for _, v := range resp.Header {
		n += len(v)
	}
	// Copies of the value slices, one allocation for all, so that nothing
	// downstream can write into the stored answer.
	vals := make([]string, n)
	for k, v := range resp.Header {
		c := copy(vals, v)
		h[k] = vals[:c:c]
		vals = vals[c:]
	}
	h[IdempotentReplayedHeader] = []string{"true"}
	bodyAllowed := resp.Status >= 200 && resp.Status != http.StatusNoContent && resp.Status != http.StatusNotModified
	if _, ok := resp.Header["Content-Length"]; !ok && bodyAllowed {
		h["Content-Length"] = []string{strconv.Itoa(len(resp.Body))}
	}
	w.WriteHeader(resp.Status)
	if len(resp.Body) > 0 && bodyAllowed && r.Method != http.MethodHead {
		_, _ = w.Write(resp.Body) // the client has gone if this fails
	}
}

// idempotencyWriter passes a response through and keeps a copy of it.
type idempotencyWriter struct {
	http.ResponseWriter
	before   http.Header // the header as outer middleware left it
	header   http.Header // what the handler set, taken when the header was sent
	body     []byte
	max      int64
	status   int // the final status, 0 until sent
	tooLarge bool
	hijacked bool
}

// sent takes the status and the handler's headers when the header goes out.
func (iw *idempotencyWriter) sent(status int) {
	iw.status = status
	h := iw.ResponseWriter.Header().Clone()
	for k, v := range h {
		if b, ok := iw.before[k]; ok && slices.Equal(b, v) {
			delete(h, k)
		}
	}
	iw.header = h
	if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
		if cl > iw.max {
			iw.tooLarge = true
		} else {
			iw.body = make([]byte, 0, cl)
		}
	}
}

// WriteHeader takes the final status (not a 1xx) and passes code on.
func (iw *idempotencyWriter) WriteHeader(code int) {
	if iw.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		iw.sent(code)
	}
	iw.ResponseWriter.WriteHeader(code)
}

// Write keeps a copy of b, up to the limit, and passes it on. It keeps all of b
// even when the client has gone: the copy is the answer the handler gave.
func (iw *idempotencyWriter) Write(b []byte) (int, error) {
	if iw.status == 0 {
		iw.sent(http.StatusOK)
	}
	if !iw.tooLarge {
		if int64(len(iw.body))+int64(len(b)) > iw.max {
			iw.tooLarge, iw.body = true, nil
		} else {
			iw.body = append(iw.body, b...)
		}
	}
	return iw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (iw *idempotencyWriter) Unwrap() http.ResponseWriter { return iw.ResponseWriter }

// Flush implements http.Flusher; flushing sends the header.
func (iw *idempotencyWriter) Flush() {
	if iw.status == 0 {
		iw.sent(http.StatusOK)
	}
	_ = http.NewResponseController(iw.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker. A hijacked connection's answer is the
// handler's own business and cannot be kept.
func (iw *idempotencyWriter) Hijack() (c net.Conn, rw *bufio.ReadWriter, err error) {
	c, rw, err = http.NewResponseController(iw.ResponseWriter).Hijack()
	if err == nil {
		iw.hijacked = true
	}
	return c, rw, err
}

// response returns the answer to keep, or nil when it must not be kept. ctx is
// the request's.
func (iw *idempotencyWriter) response(ctx context.Context) *IdempotencyResponse {
	if iw.status == 0 {
		if ctx.Err() != nil {
			return nil // wrote nothing and gave up: the client or the deadline has gone
		}
		iw.sent(http.StatusOK) // net/http's answer to a handler that wrote nothing
	}
	switch {
	case iw.hijacked, iw.tooLarge, iw.status == http.StatusSwitchingProtocols:
		return nil
	case resilience.FailureStatus(iw.status):
		return nil // retried by pier's client: the retry must run the handler
	}
	return &IdempotencyResponse{Status: iw.status, Header: iw.header, Body: iw.body}
}

// MemoryIdempotencyStore is an [IdempotencyStore] in the memory of one process,
// for one instance or several in one process. Make it with
// [NewMemoryIdempotencyStore].
//
// It is bounded in time and size and runs no goroutine: expired keys are
// dropped when a Claim or Complete finds them (the oldest first), and when the
// store holds more keys or bytes than its bounds, the least recently written
// keys are dropped. A claim that is dropped (its lease ran out, or the bounds
// forced it out) wakes its waiters, and its holder's Complete then returns
// [ErrIdempotencyClaimLost]; a dropped completed key runs its handler again on
// the next repeat. Size the bounds for your rate of keyed requests times the
// retention.
//
// Claim never blocks and ignores its context. A response larger than the byte
// bound is not kept: Complete then drops the key, as Release would. Records
// returned for keys in progress carry a Changed channel.
//
// A MemoryIdempotencyStore is safe for concurrent use. It needs no Close.
type MemoryIdempotencyStore struct {
	maxKeys   int
	maxBytes  int64
	retention time.Duration
	now       func() time.Time // tests set a clock of their own

	mu         sync.Mutex
	entries    map[string]*memoryEntry
	head, tail *memoryEntry // least recently written first
	bytes      int64
	seq        uint64 // the last token handed out
}

type memoryEntry struct {
	key, fingerprint string
	token            string               // set while in progress
	resp             *IdempotencyResponse // set once completed
	expires          time.Time            // the lease's end, then the retention's
	changed          chan struct{}        // made for the first waiter, closed when the claim ends
	size             int64
	prev, next       *memoryEntry
}

// MemoryStoreOption configures [NewMemoryIdempotencyStore].
type MemoryStoreOption func(*memoryStoreConfig)

type memoryStoreConfig struct {
	maxKeys   int
	maxBytes  int64
	retention time.Duration
}

// WithMemoryStoreMaxKeys sets the most keys the store holds, in progress or
// completed. The default is [DefaultMemoryStoreKeys], 10,000; n <= 0 keeps it.
func WithMemoryStoreMaxKeys(n int) MemoryStoreOption {
	return func(c *memoryStoreConfig) {
		if n > 0 {
			c.maxKeys = n
		}
	}
}

// WithMemoryStoreMaxBytes sets the most bytes the store holds: kept bodies,
// headers and keys, plus a small allowance per key. Counting keys alone would
// let 10,000 answers of 1 MiB take 10 GiB. The default is
// [DefaultMemoryStoreBytes], 64 MiB; n <= 0 keeps it.
func WithMemoryStoreMaxBytes(n int64) MemoryStoreOption {
	return func(c *memoryStoreConfig) {
		if n > 0 {
			c.maxBytes = n
		}
	}
}

// WithMemoryStoreRetention sets how long a completed key is kept, counted from
// its completion. The default is [DefaultMemoryStoreRetention], 24 h; d <= 0
// keeps it.
func WithMemoryStoreRetention(d time.Duration) MemoryStoreOption {
	return func(c *memoryStoreConfig) {
		if d > 0 {
			c.retention = d
		}
	}
}

// NewMemoryIdempotencyStore returns an empty store with the given bounds.
func NewMemoryIdempotencyStore(opts ...MemoryStoreOption) *MemoryIdempotencyStore {
	c := memoryStoreConfig{
		maxKeys:   DefaultMemoryStoreKeys,
		maxBytes:  DefaultMemoryStoreBytes,
		retention: DefaultMemoryStoreRetention,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return &MemoryIdempotencyStore{
		maxKeys:   c.maxKeys,
		maxBytes:  c.maxBytes,
		retention: c.retention,
		now:       time.Now,
		entries:   make(map[string]*memoryEntry),
	}
}

// memoryEntryOverhead is what the store counts for an entry beyond its
// strings and response: the entry, its map slot and the response's fields.
const memoryEntryOverhead = 256

// Claim implements [IdempotencyStore].
func (s *MemoryIdempotencyStore) Claim(_ context.Context, key, fingerprint string, lease time.Duration) (IdempotencyRecord, error) {
	if lease <= 0 {
		lease = DefaultIdempotencyLease
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	if e, ok := s.entries[key]; ok {
		if now.Before(e.expires) {
			rec := IdempotencyRecord{Fingerprint: e.fingerprint, Response: e.resp}
			if e.resp == nil {
				if e.changed == nil {
					e.changed = make(chan struct{})
				}
				rec.Changed = e.changed
			}
			return rec, nil
		}
		s.remove(e) // its lease or retention has run out
	}
	s.seq++
	e := &memoryEntry{key: key, fingerprint: fingerprint, token: strconv.FormatUint(s.seq, 10), expires: now.Add(lease)}
	e.size = int64(len(key)+len(fingerprint)+len(e.token)) + memoryEntryOverhead
	s.push(e)
	s.evict()
	return IdempotencyRecord{Token: e.token, Fingerprint: fingerprint}, nil
}

// Complete implements [IdempotencyStore]. A claim whose lease has run out can
// still complete while no other request has taken the key.
func (s *MemoryIdempotencyStore) Complete(_ context.Context, key, token string, resp *IdempotencyResponse) error {
	if resp == nil {
		return errors.New("service: MemoryIdempotencyStore.Complete: nil response")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok || token == "" || e.token != token {
		return ErrIdempotencyClaimLost
	}
	size := int64(len(key)+len(e.fingerprint)+len(resp.Body)) + memoryEntryOverhead
	for k, v := range resp.Header {
		size += int64(len(k))
		for _, x := range v {
			size += int64(len(x)) + 16 // the string's header
		}
	}
	if size > s.maxBytes {
		s.remove(e) // it would push out everything else
		return nil
	}
	s.unlink(e)
	s.bytes += size - e.size
	e.size, e.token, e.resp = size, "", resp
	e.expires = s.now().Add(s.retention)
	s.link(e)
	s.wake(e)
	s.evict()
	return nil
}

// Release implements [IdempotencyStore].
func (s *MemoryIdempotencyStore) Release(_ context.Context, key, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok || token == "" || e.token != token {
		return ErrIdempotencyClaimLost
	}
	s.remove(e)
	return nil
}

// expire drops expired entries from the front of the list. Entries behind an
// unexpired one wait for it, for their own key's next Claim or for eviction.
func (s *MemoryIdempotencyStore) expire(now time.Time) {
	for s.head != nil && !now.Before(s.head.expires) {
		s.remove(s.head)
	}
}

// evict drops the least recently written entries while the store is too big.
func (s *MemoryIdempotencyStore) evict() {
	for s.head != nil && (len(s.entries) > s.maxKeys || s.bytes > s.maxBytes) {
		s.remove(s.head)
	}
}

func (s *MemoryIdempotencyStore) push(e *memoryEntry) {
	s.entries[e.key] = e
	s.bytes += e.size
	s.link(e)
}

func (s *MemoryIdempotencyStore) remove(e *memoryEntry) {
	s.unlink(e)
	delete(s.entries, e.key)
	s.bytes -= e.size
	s.wake(e)
}

// link appends e to the list.
func (s *MemoryIdempotencyStore) link(e *memoryEntry) {
	e.prev, e.next = s.tail, nil
	if s.tail != nil {
		s.tail.next = e
	} else {
		s.head = e
	}
	s.tail = e
}

func (s *MemoryIdempotencyStore) unlink(e *memoryEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// wake closes e's channel, if a waiter asked for one.
func (s *MemoryIdempotencyStore) wake(e *memoryEntry) {
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}
