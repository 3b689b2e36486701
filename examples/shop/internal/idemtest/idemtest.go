package idemtest

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pier-go/pier/idempotency"
)

// Clock is the time the stores of one test read: set by the suite, safe for
// concurrent use.
type Clock struct{ ms atomic.Int64 }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

func (c *Clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// Opener opens a store on one test's database, measuring leases and retention
// on now. Every call is a new handle on the same database, as a second
// process would have; the handles close when t ends. The stores keep a
// completed key for an hour.
type Opener func(t *testing.T, now func() time.Time) idempotency.Store

// Retention is the retention an Opener's stores must have.
const Retention = time.Hour

// Run runs the suite as subtests of t, in parallel; newDB makes a fresh, empty
// database for each and returns how to open it.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, open Opener, clock *Clock)
	}{
		{"ClaimCompleteRelease", testClaimCompleteRelease},
		{"KeysSurviveReopen", testKeysSurviveReopen},
		{"ConcurrentClaimsOneToken", testConcurrentClaims},
		{"ConcurrentTakeoverOfALapsedClaim", testConcurrentTakeover},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &Clock{}
			clock.ms.Store(time.Unix(1_800_000_000, 0).UnixMilli())
			tc.test(t, newDB(t), clock)
		})
	}
}

// testClaimCompleteRelease walks the compare-and-set of every method.
func testClaimCompleteRelease(t *testing.T, open Opener, clock *Clock) {
	s := open(t, clock.Now)
	ctx := t.Context()

	first, err := s.Claim(ctx, "k", "fp1", time.Minute)
	if err != nil || first.Token == "" || first.Fingerprint != "fp1" {
		t.Fatalf("first claim = %+v, %v", first, err)
	}
	held, err := s.Claim(ctx, "k", "fp2", time.Minute)
	if err != nil || held.Token != "" || held.Fingerprint != "fp1" || held.Response != nil || held.Changed == nil {
		t.Fatalf("claim of a held key = %+v, %v", held, err)
	}
	if err := s.Release(ctx, "k", "not-the-token"); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("release with another token: %v", err)
	}
	if err := s.Release(ctx, "k", first.Token); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Changed:
	default:
		t.Fatal("release did not close Changed")
	}

	second, err := s.Claim(ctx, "k", "fp1", time.Minute)
	if err != nil || second.Token == "" || second.Token == first.Token {
		t.Fatalf("claim after release = %+v, %v", second, err)
	}
	resp := &idempotency.Response{Status: 201, Header: http.Header{"Location": {"/orders/1"}}, Body: []byte(`{"id":"1"}`)}
	if err := s.Complete(ctx, "k", first.Token, resp); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("complete with a stale token: %v", err)
	}
	if err := s.Complete(ctx, "k", second.Token, resp); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "k", second.Token); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("release of a completed key: %v", err)
	}
	done, err := s.Claim(ctx, "k", "fp1", time.Minute)
	if err != nil || done.Token != "" || done.Fingerprint != "fp1" || done.Response == nil || done.Response.Status != 201 ||
		string(done.Response.Body) != `{"id":"1"}` || done.Response.Header.Get("Location") != "/orders/1" {
		t.Fatalf("claim of a completed key = %+v, %v", done, err)
	}

	// A claim whose lease ran out can be taken over, and the old token is
	// then worthless.
	lapsing, err := s.Claim(ctx, "k2", "fp", time.Second)
	if err != nil || lapsing.Token == "" {
		t.Fatalf("claim k2 = %+v, %v", lapsing, err)
	}
	if again, err := s.Claim(ctx, "k2", "fp", time.Minute); err != nil || again.Token != "" {
		t.Fatalf("claim within the lease = %+v, %v", again, err)
	}
	clock.advance(2 * time.Second)
	taken, err := s.Claim(ctx, "k2", "fp", time.Minute)
	if err != nil || taken.Token == "" || taken.Token == lapsing.Token {
		t.Fatalf("claim after the lease = %+v, %v", taken, err)
	}
	if err := s.Complete(ctx, "k2", lapsing.Token, resp); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("complete by the claim that lapsed: %v", err)
	}
	// A completed key is kept for the retention, and dropped after it.
	clock.advance(Retention - time.Minute)
	if kept, err := s.Claim(ctx, "k", "fp3", time.Minute); err != nil || kept.Token != "" || kept.Response == nil {
		t.Fatalf("claim within the retention = %+v, %v", kept, err)
	}
	clock.advance(2 * time.Minute)
	again, err := s.Claim(ctx, "k", "fp3", time.Minute)
	if err != nil || again.Token == "" || again.Fingerprint != "fp3" {
		t.Fatalf("claim after the retention = %+v, %v", again, err)
	}
}

// testKeysSurviveReopen: a completed key is still completed in a new store
// on the same database, as after a restart.
func testKeysSurviveReopen(t *testing.T, open Opener, clock *Clock) {
	s := open(t, clock.Now)
	rec, err := s.Claim(t.Context(), "k", "fp", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(t.Context(), "k", rec.Token, &idempotency.Response{Status: 200, Header: http.Header{}, Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got, err := open(t, clock.Now).Claim(t.Context(), "k", "fp", 0)
	if err != nil || got.Token != "" || got.Response == nil || got.Response.Status != 200 || string(got.Response.Body) != "x" {
		t.Fatalf("after reopening = %+v, %v", got, err)
	}
}

// claimAll claims key from n goroutines at once over the handles and returns
// the tokens handed out.
func claimAll(t *testing.T, handles []idempotency.Store, key string, n int) []string {
	t.Helper()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens []string
		errs   []error
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			rec, err := handles[i%len(handles)].Claim(t.Context(), key, "fp", time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if rec.Token != "" {
				tokens = append(tokens, rec.Token)
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return tokens
}

// testConcurrentClaims: ten claims of one key at once, from two handles (two
// instances of a service), hand out one token.
func testConcurrentClaims(t *testing.T, open Opener, clock *Clock) {
	handles := []idempotency.Store{open(t, clock.Now), open(t, clock.Now)}
	if tokens := claimAll(t, handles, "k", 10); len(tokens) != 1 {
		t.Fatalf("%d claims of one key got a token, want 1", len(tokens))
	}
}

// testConcurrentTakeover: once a claim's lease has run out, ten claims at
// once take it over once.
func testConcurrentTakeover(t *testing.T, open Opener, clock *Clock) {
	handles := []idempotency.Store{open(t, clock.Now), open(t, clock.Now)}
	if _, err := handles[0].Claim(t.Context(), "k", "fp", time.Second); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Minute)
	if tokens := claimAll(t, handles, "k", 10); len(tokens) != 1 {
		t.Fatalf("%d claims of a lapsed key got a token, want 1", len(tokens))
	}
}
