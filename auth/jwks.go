package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/pier-go/pier/internal/backoff"
)

// jwksSource holds one issuer's fetched keys and fetches them again on a
// schedule and, rate limited, when a token names an unknown kid. One goroutine
// (run) does every fetch, so no context outlives the call it was passed to.
//
// jwkset does the fetching, decoding and key parsing: each fetch is one call of
// jwkset.NewStorageFromHTTP without a RefreshInterval, which requests the set
// once into the given storage and starts no goroutine. Its own refresh
// machinery (and keyfunc's, built on it) is not used, because (as of jwkset
// v0.11.4 and keyfunc v3.9.2) its refresh goroutine ends with a context but
// cannot be waited for, so Close could not wait for it; its first fetch runs
// inside the constructor, blocking it; and its unknown-kid refresh waits on the
// rate limiter inside the request and runs the fetch under the same deadline as
// that wait (RateLimitWaitMax), so a short one cuts fetches short and a long one
// holds requests, while concurrent requests for the same new kid do not share
// the fetch. The schedule, the rate limit (golang.org/x/time/rate) and the sharing
// of one fetch between waiting requests are therefore written here.
type jwksSource struct {
	issuer   string
	url      string
	client   *http.Client
	timeout  time.Duration
	refresh  time.Duration
	retryMax time.Duration
	algs     []string
	logger   *slog.Logger
	now      func() time.Time

	keys atomic.Pointer[keySet] // nil until the first good fetch

	// kick hands run the in-flight mark of a fetch that a request claimed.
	// Buffered 1: at most one fetch is claimed at a time.
	kick chan chan struct{}

	mu       sync.Mutex
	inflight chan struct{} // non-nil while a fetch is claimed or runs; closed when it ends
	stopped  bool          // run has returned: nothing will fetch any more
}

var errSetTooLarge = errors.New("JWKS response too large")

// run is the source's one goroutine, which does every fetch: at once, then
// every refresh interval, and whenever a request claims an unknown-kid fetch;
// while no set was ever fetched it retries sooner, backing off from 1 s to the
// unknown-kid interval. It returns when ctx ends. first is the in-flight mark
// that NewVerifier set, so that requests arriving before the first fetch ends
// wait for it rather than claim another.
func (j *jwksSource) run(ctx context.Context, first chan struct{}) {
	defer j.stop()
	j.fetchAndRelease(ctx, first)
	retry := backoff.New(time.Second, j.retryMax)
	for {
		wait := j.refresh
		if j.keys.Load() == nil {
			wait = min(retry.Next(), j.refresh)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case ch := <-j.kick:
			t.Stop()
			j.fetchAndRelease(ctx, ch)
		case <-t.C:
			// When a request's fetch is claimed, it is in kick: the next round
			// runs it, and it stands for this one.
			if ch, leader := j.claim(nil); leader {
				j.fetchAndRelease(ctx, ch)
			}
		}
	}
}

// claim marks a fetch as in flight and returns its mark with leader true, or
// returns the mark of the fetch already in flight, or nil when allow refuses
// or run has stopped. A request (allow not nil) that leads hands its mark to
// run, which fetches; run's own schedule (allow nil) fetches itself.
func (j *jwksSource) claim(allow func() bool) (ch chan struct{}, leader bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inflight != nil {
		return j.inflight, false
	}
	if j.stopped || allow != nil && !allow() {
		return nil, false
	}
	j.inflight = make(chan struct{})
	if allow != nil {
		j.kick <- j.inflight // never blocks: the buffer is free while nothing is in flight
	}
	return j.inflight, true
}

// stop marks the source stopped and releases a claimed fetch that run will
// not do, so that no request waits for it.
func (j *jwksSource) stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopped = true
	select {
	case ch := <-j.kick:
		close(ch)
		j.inflight = nil
	default:
	}
}

func (j *jwksSource) fetchAndRelease(ctx context.Context, ch chan struct{}) {
	err := j.fetch(ctx)
	j.mu.Lock()
	j.inflight = nil
	close(ch)
	j.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		j.logger.LogAttrs(ctx, slog.LevelWarn, "auth: JWKS fetch failed; keeping the last good keys",
			slog.String("issuer", j.issuer), slog.String("url", j.url), slog.Any("error", err))
	}
}

// fetch requests the set once and, when it holds at least one usable key,
// swaps it in. On any failure the last good set stays.
func (j *jwksSource) fetch(ctx context.Context) error {
	mem := jwkset.NewMemoryStorage()
	_, err := jwkset.NewStorageFromHTTP(j.url, jwkset.HTTPClientStorageOptions{
		Client:      j.client,
		Ctx:         ctx,
		HTTPTimeout: j.timeout,
		Storage:     mem,
	})
	if err != nil {
		return err
	}
	jwks, err := mem.KeyReadAll(ctx)
	if err != nil {
		return err
	}
	var keys []boundKey
	var ids []string
	for _, k := range jwks {
		m := k.Marshal()
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue // an encryption key never verifies a signature
		}
		for _, alg := range j.algs {
			if m.ALG != "" && string(m.ALG) != alg {
				continue
			}
			key, err := bindKey(alg, k.Key())
			if err != nil {
				continue // wrong type, weak key or other curve for this alg
			}
			keys = append(keys, boundKey{alg: alg, key: key})
			ids = append(ids, m.KID)
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("JWKS has %d keys, none usable with %v", len(jwks), j.algs)
	}
	set := newKeySet(keys, ids)
	set.fetched = j.now()
	j.keys.Store(set)
	j.logger.LogAttrs(ctx, slog.LevelDebug, "auth: JWKS fetched",
		slog.String("issuer", j.issuer), slog.String("url", j.url), slog.Int("keys", len(jwks)))
	return nil
}

// jwksClient returns a copy of c that refuses redirects to another host (or
// from https to http) and JWKS responses larger than maxBytes.
func jwksClient(c *http.Client, maxBytes int64) *http.Client {
	cp := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = &limitTransport{base: base, max: maxBytes}
	next := c.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if req.URL.Host != first.Host {
			return fmt.Errorf("auth: JWKS redirect from host %q to %q refused", first.Host, req.URL.Host)
		}
		if first.Scheme == "https" && req.URL.Scheme != "https" {
			return errors.New("auth: JWKS redirect from https to http refused")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("auth: JWKS stopped after 10 redirects")
		}
		return nil
	}
	return &cp
}

// limitTransport bounds the size of response bodies. net/http has
// MaxBytesReader only for request bodies, and jwkset decodes the response body
// without a limit.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w: Content-Length %d over %d bytes", errSetTooLarge, resp.ContentLength, t.max)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n > 0 {
			return 0, errSetTooLarge
		} else {
			return 0, err
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
