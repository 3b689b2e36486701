package idempotency

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/pier-go/pier/internal/backoff"
	"github.com/pier-go/pier/internal/bodylimit"
	"github.com/pier-go/pier/problem"
)

// Header is the request header that carries an idempotency key: an opaque
// string a client picks for one operation and sends again with every retry of
// it (draft-ietf-httpapi-idempotency-key-header). pier's client retries a
// request that carries it as if it were idempotent.
const Header = "Idempotency-Key"

// ReplayedHeader is set to "true" on an answer that [Middleware]
// replayed from its store instead of running the handler.
const ReplayedHeader = "Idempotent-Replayed"

// Defaults of [Middleware] and [NewMemoryStore]. Each can be
// changed with the option named beside it.
const (
	// DefaultMaxBody is the largest response body, in bytes, that
	// Middleware keeps for replay ([WithMaxBody]).
	DefaultMaxBody int64 = 1 << 20
	// DefaultLease is how long a claim on a key lasts when its holder
	// neither completes nor releases it ([WithLease]): twice the
	// default request timeout, so that a handler that honours its deadline
	// always finishes inside its lease.
	DefaultLease = time.Minute
	// DefaultMaxKeys is the most keys a MemoryStore holds
	// ([WithMaxKeys]).
	DefaultMaxKeys = 10_000
	// DefaultMaxInProgress is the most claims in progress a MemoryStore
	// holds ([WithMaxInProgress]): a tenth of DefaultMaxKeys, so that a burst
	// of new keys pushes out at most a tenth of the kept answers, and room
	// for 20,000 keyed requests a second that take 50 ms each.
	DefaultMaxInProgress = 1_000
	// DefaultMaxBytes is the most bytes of responses (bodies, headers
	// and keys) a MemoryStore holds ([WithMaxBytes]).
	DefaultMaxBytes int64 = 64 << 20
	// DefaultRetention is how long a MemoryStore keeps a
	// completed key ([WithRetention]): 24 h, as Stripe does.
	DefaultRetention = 24 * time.Hour
)

// ErrClaimLost is what an [Store] returns from Complete
// or Release when the token no longer holds the key: its lease ran out and
// another request claimed the key, or the store dropped it.
var ErrClaimLost = errors.New("idempotency: claim lost")

// ErrFull is what a [Store] returns from Claim when it cannot take
// another claim without dropping one in progress: it holds as many requests in
// progress as it may. [Middleware] answers it with a 503 problem and
// Retry-After before the handler runs, so the client retries later.
var ErrFull = errors.New("idempotency: too many keys in progress")

// Store keeps the state of idempotency keys for [Middleware].
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
// the middleware calls Claim again, woken by [Record.Changed] when
// the store can notify (the memory store can) and otherwise polling with
// exponential backoff and jitter (10 ms growing to 500 ms). Stores need no
// goroutine and no subscription to be correct.
//
// Keys are opaque byte strings: the middleware's scope (method and path by
// default), a newline and the client's key; with [WithCallerScope], the scope
// is preceded by the caller's length in decimal, a colon, the caller and a
// space ("3:ada POST /orders\nk-1"). A store that cannot hold any byte
// should hash them. Responses are immutable once passed to Complete: neither
// the store nor the middleware modifies one, so a store may hand the same
// value to every replay. Implementations must be safe for concurrent use.
type Store interface {
	// Claim claims key for the caller unless another claim holds it or a
	// response is kept for it. When the key is absent, or its last claim's
	// lease has run out, Claim records fingerprint and a new token for lease and
	// returns them, Token set. Otherwise it changes nothing and returns what it
	// holds, Token empty: the fingerprint of the request that claimed the key,
	// and its response once completed. A lease <= 0 means
	// [DefaultLease].
	//
	// A store that bounds its size must never drop a claim in progress to make
	// room: its waiters would claim the key and run the handler beside its
	// holder. When it cannot take a claim without doing so, Claim returns
	// [ErrFull].
	Claim(ctx context.Context, key, fingerprint string, lease time.Duration) (Record, error)
	// Complete replaces the claim that token holds on key with resp, kept for
	// the store's retention, and closes the Changed channel it handed out for
	// the claim, if any. It returns [ErrClaimLost] when token does
	// not hold key.
	Complete(ctx context.Context, key, token string, resp *Response) error
	// Release drops the claim that token holds on key, so that the next Claim
	// succeeds, and closes the claim's Changed channel, if any. It returns
	// [ErrClaimLost] when token does not hold key.
	Release(ctx context.Context, key, token string) error
}

// Record is what [Store.Claim] found or made for a key.
type Record struct {
	// Token is set when the caller now holds the key: pass it to Complete or
	// Release. It is empty when another request holds or held the key.
	Token string
	// Fingerprint identifies the request that claimed the key (its method,
	// path, query and a SHA-256 of its body).
	Fingerprint string
	// Response is the first answer once the key is completed, nil while it is
	// in progress.
	Response *Response
	// Changed, for a key in progress, may be a channel that the store closes
	// when the claim ends (completed, released or dropped). Nil makes the
	// middleware poll.
	Changed <-chan struct{}
}

// Response is an answer kept for replay: the status and body, and
// the headers the handler set (not those that outer middleware, such as
// service.RequestID, had set before it ran). Trailers are not kept.
type Response struct {
	Status int         // the final status, never 1xx
	Header http.Header // in canonical form
	Body   []byte      // the whole body, as the handler wrote it
}

// Option configures [Middleware].
type Option func(*config)

type config struct {
	maxBody   int64
	lease     time.Duration
	scope     func(*http.Request) string
	caller    func(*http.Request) (string, bool)
	callerSet bool
}

// WithMaxBody sets the largest response body, in bytes, that is kept
// for replay. The client still receives a larger response in full, but it is
// not kept and the key is released, so a retry runs the handler again: set it
// above the largest answer of every route that takes keys. The default is
// [DefaultMaxBody], 1 MiB; 0 keeps it and a negative n is an error.
func WithMaxBody(n int64) Option {
	return func(c *config) { c.maxBody = n }
}

// WithScope sets the function that names the space a key lives in:
// the same key in two scopes is two keys. The default is the method and path
// ("POST /orders"), so that a key reused on another route does not replay this
// route's answer. The default leaves the caller out: behind authentication, two
// callers that send the same key with the same request share one answer, and
// the second gets the first's. Add the caller with [WithCallerScope], which
// works with any scope. A nil f keeps the default.
func WithScope(f func(*http.Request) string) Option {
	return func(c *config) { c.scope = f }
}

// WithCallerScope puts the caller in every key's scope, so that the same key
// sent by two callers is two keys: one caller can neither replay another's
// answer nor hold up another's key. caller returns the verified identity of the
// request's caller, such as a token's subject that authentication middleware,
// running before this middleware, put in the request's context; never a value
// the client writes unverified. With pier's package auth:
//
//	idempotency.WithCallerScope(func(r *http.Request) (string, bool) {
//		c, ok := auth.FromContext(r.Context())
//		if !ok {
//			return "", false
//		}
//		return c.Subject, true // c.Issuer + " " + c.Subject when several issuers are trusted
//	})
//
// A keyed request for which caller reports no caller is refused with a 401
// problem (WWW-Authenticate: Bearer, the scheme of package auth) before its body
// is read or the handler runs. Sharing one scope among all anonymous callers
// would hand one anonymous client another's answer, and a keyed request without
// a caller on a route that needs one means the middleware runs before
// authentication: refusing shows that at the first request. For a route open to
// anonymous callers that still wants keys, let caller return a fixed name and
// true for them: they then share one scope, as with the default. Requests
// without a key are not affected. The default is no caller in the scope; a nil
// caller is an error.
func WithCallerScope(caller func(r *http.Request) (string, bool)) Option {
	return func(c *config) { c.caller, c.callerSet = caller, true }
}

// WithLease sets how long a claim holds its key when its request
// neither completes nor releases it (the instance died, or the handler ignores
// its context): until then, repeats wait or get 409; after it, the next repeat
// runs the handler. A request with a later deadline holds its claim until that
// deadline and a few seconds more, so a handler that honours its context never
// outlives its claim. The default is [DefaultLease], 1 min; 0 keeps it and a
// negative d is an error.
func WithLease(d time.Duration) Option {
	return func(c *config) { c.lease = d }
}

func defaultScope(r *http.Request) string { return r.Method + " " + r.URL.Path }

// Timings of the middleware that no option changes.
const (
	// pollMin and pollMax bound the backoff between two
	// Claims of a request that waits for a key held elsewhere.
	pollMin = 10 * time.Millisecond
	pollMax = 500 * time.Millisecond
	// leaseMargin is what a lease stretched to the request's deadline
	// adds for answering and calling Complete.
	leaseMargin = 5 * time.Second
	// storeTimeout bounds Complete and Release, which run after the
	// handler with a context that the end of the request does not cancel.
	storeTimeout = 5 * time.Second
)

// retryAfterFull is the Retry-After, in seconds, of the 503 that answers
// [ErrFull]: claims last as long as requests do, so some end within a second.
const retryAfterFull = "1"

// Middleware returns middleware that makes requests carrying an
// Idempotency-Key header run at most once per key (within the store's
// retention), so a client can retry a POST or PATCH safely, on this instance or
// on another that shares the store. A nil store means a new
// [MemoryStore] with its defaults, which serves one instance.
//
// A request without the header passes through untouched, at the cost of a
// header lookup. So does a request with a safe method (GET, HEAD, OPTIONS,
// TRACE), which has nothing to protect; every other method takes keys. A key
// must be 1 to 255 printable ASCII characters and sent once; anything else gets
// a 400 problem.
//
// For a keyed request the middleware reads the body into memory, up to the
// request's limit (service.BodyLimit's, else service.DefaultBodyLimit, 1 MiB,
// which also bounds a body whose limit was lifted, as it must be held; 413
// past it) and hands the handler a copy, and fingerprints the request: method,
// path, query and a SHA-256 of the body. The request context's deadline, if it
// has one, bounds the reading too (it becomes the connection's read deadline,
// through http.ResponseController): a body that has not arrived by then gets a
// 408 problem and the connection is closed. The buffer grows with what
// arrives, from at most 64 KiB, so a declared Content-Length costs nothing
// until its bytes come. The key is looked up in its scope ([WithScope]; behind
// authentication, add the caller with [WithCallerScope]):
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
// [WithMaxBody]. The key is released instead, so the retry runs the
// handler. Every other answer is stored, 500 included: a handler that failed
// may have had side effects, and running it again is what the key is there to
// prevent. A failing store is answered with a 503 problem before the handler
// runs, and so is a full one ([ErrFull]: too many keys in progress), with
// Retry-After: 1; a Complete or Release that fails afterwards has nothing left to tell the
// client (a store that wants its failures logged logs them itself), and the
// claim lapses after its lease.
//
// At most once rests on the lease: a handler that outlives its claim
// ([WithLease]) can run twice. Inside a pier Service, put the
// middleware in service.WithMiddleware: it then sits inside the request timeout and
// body limit, and behind the request ID, which replays do not copy.
//
// The middleware starts no goroutine and is safe for concurrent use.
func Middleware(store Store, opts ...Option) (func(http.Handler) http.Handler, error) {
	var cfg config
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("idempotency: nil option")
		}
		o(&cfg)
	}
	switch {
	case cfg.maxBody < 0:
		return nil, fmt.Errorf("idempotency: negative max body %d", cfg.maxBody)
	case cfg.lease < 0:
		return nil, fmt.Errorf("idempotency: negative lease %v", cfg.lease)
	case cfg.callerSet && cfg.caller == nil:
		return nil, errors.New("idempotency: nil caller function")
	}
	cfg.maxBody = cmp.Or(cfg.maxBody, DefaultMaxBody)
	cfg.lease = cmp.Or(cfg.lease, DefaultLease)
	if cfg.scope == nil {
		cfg.scope = defaultScope
	}
	if store == nil {
		store, _ = NewMemoryStore() // no options: cannot fail
	}
	return func(next http.Handler) http.Handler {
		return &middleware{next: next, store: store, cfg: cfg}
	}, nil
}

type middleware struct {
	next  http.Handler
	store Store
	cfg   config
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	keys, ok := r.Header[Header]
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

// validKey reports whether k is 1 to 255 printable ASCII characters.
// net/http has trimmed the white space around it already.
func validKey(k string) bool {
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

func (m *middleware) serveKeyed(w http.ResponseWriter, r *http.Request, keys []string) {
	switch {
	case len(keys) != 1:
		problem.Status(w, r, http.StatusBadRequest, "send one Idempotency-Key header, not "+strconv.Itoa(len(keys)))
		return
	case !validKey(keys[0]):
		problem.Status(w, r, http.StatusBadRequest, "Idempotency-Key must be 1 to 255 printable ASCII characters")
		return
	}
	// The store key: the scope, a newline and the client's key, which never
	// holds a newline, so the last one divides it from the scope, whatever the
	// scope holds. A caller goes in front, its length first, so that no caller
	// and scope can spell another pair.
	scope := m.cfg.scope(r)
	if m.cfg.caller != nil {
		caller, ok := m.cfg.caller(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			problem.Status(w, r, http.StatusUnauthorized, "a request with an Idempotency-Key needs an authenticated caller")
			return
		}
		scope = strconv.Itoa(len(caller)) + ":" + caller + " " + scope
	}
	key := scope + "\n" + keys[0]

	fp, body, keep, err := readKeyedBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			problem.Status(w, r, http.StatusRequestEntityTooLarge, bodylimit.Detail(tooLarge.Limit))
		case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded):
			// What net/http answers to headers that come too slowly. The rest
			// of the body may still come: it must not be read as a request.
			w.Header().Set("Connection", "close")
			problem.Status(w, r, http.StatusRequestTimeout, "the request body did not arrive within the request's deadline")
		default:
			problem.Status(w, r, http.StatusBadRequest, "the request body could not be read")
		}
		return
	}
	ctx := r.Context()
	lease := m.cfg.lease
	if dl, ok := ctx.Deadline(); ok {
		lease = max(lease, time.Until(dl)+leaseMargin)
	}
	poll := backoff.New(pollMin, pollMax)
	for {
		rec, err := m.store.Claim(ctx, key, fp, lease)
		switch {
		case errors.Is(err, ErrFull):
			w.Header().Set("Retry-After", retryAfterFull)
			problem.Status(w, r, http.StatusServiceUnavailable, "too many requests with an Idempotency-Key are in progress")
			return
		case err != nil:
			problem.Status(w, r, http.StatusServiceUnavailable, "the idempotency key store is unavailable")
			return
		case rec.Token != "":
			r2 := *r
			if r.Body != nil && r.Body != http.NoBody {
				r2.Body = &bodylimit.Body{ReadCloser: io.NopCloser(bytes.NewReader(body)), Limit: keep}
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
		wait := pollMax
		if rec.Changed == nil {
			wait = poll.Next()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			problem.Status(w, r, http.StatusConflict, "a request with this Idempotency-Key is in progress")
			return
		case <-rec.Changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// bodyPrealloc is the most readKeyedBody allocates for a body before it
// arrives. A declared Content-Length is a promise, not bytes: a client that
// declares 1 MiB and sends one byte must not cost 1 MiB.
const bodyPrealloc = 64 << 10

// readKeyedBody reads r's body, up to its limit and within the request's
// deadline, and fingerprints r: the hex SHA-256 of "METHOD
// escaped-path?raw-query\n" followed by the body. The escaped path and the raw
// query hold no space or newline, so no two requests hash the same text. The
// text is built in one buffer that the body is read into, so the hash needs
// neither a copy nor a hasher on the heap.
//
// keep is the limit to hand on with the body: BodyLimit's, or 0 when it was
// lifted, so that DecodeJSON reports the same limit and adds none of its own.
func readKeyedBody(w http.ResponseWriter, r *http.Request) (fp string, body []byte, keep int64, err error) {
	var src io.Reader
	limit := bodylimit.Default
	keep = bodylimit.Default
	switch b := r.Body.(type) {
	case nil:
		src = http.NoBody
	case *bodylimit.Body:
		if b.Limit > 0 {
			src, limit, keep = b, b.Limit, b.Limit // BodyLimit's reader enforces it
			break
		}
		keep = 0 // lifted: hand it on lifted, though it is held to the default here
		src = http.MaxBytesReader(bodylimit.BaseWriter(w), b, limit)
	default:
		if b != http.NoBody {
			src = http.MaxBytesReader(bodylimit.BaseWriter(w), b, limit)
		} else {
			src = b
		}
	}
	if r.ContentLength > limit {
		return "", nil, 0, &http.MaxBytesError{Limit: limit}
	}
	if dl, ok := r.Context().Deadline(); ok && src != http.NoBody {
		// net/http sets no read deadline past the headers, so without this a
		// client that sends a byte a minute holds its connection, a goroutine
		// and this buffer past every timeout. net/http clears it once the body
		// has been read to its end; after a failed read it stays, so that
		// net/http does not wait for the rest of the body either.
		_ = http.NewResponseController(w).SetReadDeadline(dl)
	}
	path := r.URL.EscapedPath()
	head := len(r.Method) + 1 + len(path) + 1 + len(r.URL.RawQuery) + 1
	// Room for a declared length, and one byte more to see the end without
	// growing; for a body of unknown length, a little.
	room := int64(bytes.MinRead)
	if r.ContentLength >= 0 {
		room = min(r.ContentLength+1, bodyPrealloc)
	}
	buf := make([]byte, 0, head+int(room))
	buf = append(buf, r.Method...)
	buf = append(buf, ' ')
	buf = append(buf, path...)
	buf = append(buf, '?')
	buf = append(buf, r.URL.RawQuery...)
	buf = append(buf, '\n')
	if buf, err = readBody(src, buf, head, r.ContentLength); err != nil {
		return "", nil, 0, err
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), buf[head:], keep, nil
}

// readBody appends what src holds to buf, whose first head bytes are not the
// body, until src ends. The buffer grows with what arrives, doubling, but
// never past the declared length (and the byte that finds the end), so it
// holds at most twice what was sent, or bodyPrealloc.
func readBody(src io.Reader, buf []byte, head int, declared int64) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			want := 2 * cap(buf)
			if declared >= 0 {
				want = min(want, head+int(declared)+1)
			}
			buf = slices.Grow(buf, max(want-len(buf), bytes.MinRead))
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		}
	}
}

// run serves r, which holds key through token, and completes or releases the
// key after.
func (m *middleware) run(w http.ResponseWriter, r *http.Request, key, token string) {
	iw := &keptWriter{ResponseWriter: w, before: w.Header().Clone(), max: m.cfg.maxBody}
	returned := false
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
		defer cancel()
		var resp *Response
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
func replay(w http.ResponseWriter, r *http.Request, resp *Response) {
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
	h[ReplayedHeader] = []string{"true"}
	bodyAllowed := resp.Status >= 200 && resp.Status != http.StatusNoContent && resp.Status != http.StatusNotModified
	if _, ok := resp.Header["Content-Length"]; !ok && bodyAllowed {
		h["Content-Length"] = []string{strconv.Itoa(len(resp.Body))}
	}
	w.WriteHeader(resp.Status)
	if len(resp.Body) > 0 && bodyAllowed && r.Method != http.MethodHead {
		_, _ = w.Write(resp.Body) // the client has gone if this fails
	}
}

// keptWriter passes a response through and keeps a copy of it.
type keptWriter struct {
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
func (iw *keptWriter) sent(status int) {
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
func (iw *keptWriter) WriteHeader(code int) {
	if iw.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		iw.sent(code)
	}
	iw.ResponseWriter.WriteHeader(code)
}

// Write keeps a copy of b, up to the limit, and passes it on. It keeps all of b
// even when the client has gone: the copy is the answer the handler gave.
func (iw *keptWriter) Write(b []byte) (int, error) {
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
func (iw *keptWriter) Unwrap() http.ResponseWriter { return iw.ResponseWriter }

// Flush implements http.Flusher; flushing sends the header.
func (iw *keptWriter) Flush() {
	if iw.status == 0 {
		iw.sent(http.StatusOK)
	}
	_ = http.NewResponseController(iw.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker. A hijacked connection's answer is the
// handler's own business and cannot be kept.
func (iw *keptWriter) Hijack() (c net.Conn, rw *bufio.ReadWriter, err error) {
	c, rw, err = http.NewResponseController(iw.ResponseWriter).Hijack()
	if err == nil {
		iw.hijacked = true
	}
	return c, rw, err
}

// response returns the answer to keep, or nil when it must not be kept. ctx is
// the request's.
func (iw *keptWriter) response(ctx context.Context) *Response {
	if iw.status == 0 {
		if ctx.Err() != nil {
			return nil // wrote nothing and gave up: the client or the deadline has gone
		}
		iw.sent(http.StatusOK) // net/http's answer to a handler that wrote nothing
	}
	switch {
	case iw.hijacked, iw.tooLarge, iw.status == http.StatusSwitchingProtocols:
		return nil
	case retried(iw.status):
		return nil // retried by pier's client: the retry must run the handler
	}
	return &Response{Status: iw.status, Header: iw.header, Body: iw.body}
}

// retried reports whether pier's client retries an answer with status: 429,
// 502, 503 and 504, resilience.FailureStatus. It is written out here so that
// this leaf imports no pier package but problem and internal helpers; a test
// holds the two in step.
func retried(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
