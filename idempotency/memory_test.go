package idempotency

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestMemoryStore(tb testing.TB, clock *fakeClock, opts ...MemoryOption) *MemoryStore {
	tb.Helper()
	s, err := NewMemoryStore(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	s.now = clock.Now
	return s
}

// claimed claims key and fails unless the claim is the caller's.
func claimed(tb testing.TB, s Store, key string, lease time.Duration) string {
	tb.Helper()
	rec, err := s.Claim(context.Background(), key, "fp", lease)
	if err != nil || rec.Token == "" {
		tb.Fatalf("Claim(%q) = %+v, %v; want the key claimed", key, rec, err)
	}
	return rec.Token
}

// completed claims and completes key with a body of n bytes.
func completed(tb testing.TB, s Store, key string, n int) {
	tb.Helper()
	token := claimed(tb, s, key, time.Minute)
	resp := &Response{Status: 201, Body: []byte(strings.Repeat("x", n))}
	if err := s.Complete(context.Background(), key, token, resp); err != nil {
		tb.Fatalf("Complete(%q) = %v", key, err)
	}
}

// stateOf returns "absent", "in progress" or "completed", looking without
// claiming.
func stateOf(s *MemoryStore, key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	switch {
	case !ok || !s.now().Before(e.expires):
		return "absent"
	case e.resp == nil:
		return "in progress"
	}
	return "completed"
}

func TestMemoryStoreEvictsOldest(t *testing.T) {
	t.Parallel()
	t.Run("keys", func(t *testing.T) {
		t.Parallel()
		s := newTestMemoryStore(t, &fakeClock{}, WithMaxKeys(3))
		for _, k := range []string{"k1", "k2", "k3", "k4", "k5"} {
			completed(t, s, k, 10)
		}
		got := []string{stateOf(s, "k1"), stateOf(s, "k2"), stateOf(s, "k3"), stateOf(s, "k4"), stateOf(s, "k5")}
		want := []string{"absent", "absent", "completed", "completed", "completed"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("states of k1..k5 (-want +got):\n%s", diff)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		s := newTestMemoryStore(t, &fakeClock{}, WithMaxBytes(3*(1000+memoryEntryOverhead+64)))
		for _, k := range []string{"k1", "k2", "k3", "k4"} {
			completed(t, s, k, 1000)
		}
		if stateOf(s, "k1") != "absent" || stateOf(s, "k2") != "completed" || stateOf(s, "k4") != "completed" {
			t.Fatalf("states %s %s %s, want the oldest evicted by size", stateOf(s, "k1"), stateOf(s, "k2"), stateOf(s, "k4"))
		}
		// An answer bigger than the whole store is not kept and drops its key.
		token := claimed(t, s, "huge", time.Minute)
		if err := s.Complete(context.Background(), "huge", token, &Response{Status: 200, Body: make([]byte, 5000)}); err != nil {
			t.Fatal(err)
		}
		if stateOf(s, "huge") != "absent" || stateOf(s, "k4") != "completed" {
			t.Fatalf("after a response over the bound: huge %s, k4 %s; want absent, completed", stateOf(s, "huge"), stateOf(s, "k4"))
		}
	})
	t.Run("a claim is never forced out for keys", func(t *testing.T) {
		t.Parallel()
		s := newTestMemoryStore(t, &fakeClock{}, WithMaxKeys(1))
		token := claimed(t, s, "a", time.Minute)
		rec, _ := s.Claim(context.Background(), "a", "fp", time.Minute)
		if rec.Changed == nil {
			t.Fatal("a key in progress came without a Changed channel")
		}
		if _, err := s.Claim(context.Background(), "b", "fp", time.Minute); !errors.Is(err, ErrFull) {
			t.Fatalf("Claim(b) beside a claim in progress at the bound = %v, want ErrFull", err)
		}
		select {
		case <-rec.Changed:
			t.Fatal("a claim in progress was dropped to make room: its waiters were woken")
		default:
		}
		if err := s.Complete(context.Background(), "a", token, &Response{Status: 200}); err != nil {
			t.Fatalf("Complete(a) = %v", err)
		}
		claimed(t, s, "b", time.Minute) // a completed answer makes room
		if stateOf(s, "a") != "absent" || stateOf(s, "b") != "in progress" {
			t.Fatalf("states a %s, b %s; want a dropped for b", stateOf(s, "a"), stateOf(s, "b"))
		}
	})
}

// TestMemoryStoreEvictionNeverDropsClaimInProgress: answers that fill the byte
// bound used to push out the oldest entry, a claim in progress, which woke its
// waiters so that one of them ran the handler beside the first.
func TestMemoryStoreEvictionNeverDropsClaimInProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestMemoryStore(t, &fakeClock{}, WithMaxBytes(4<<10))
	token := claimed(t, s, "slow", time.Minute)
	waiting, _ := s.Claim(ctx, "slow", "fp", time.Minute)
	for i := range 20 {
		completed(t, s, "big-"+strconv.Itoa(i), 1000)
	}
	select {
	case <-waiting.Changed:
		t.Fatal("answers filling the store dropped a claim in progress")
	default:
	}
	if st := stateOf(s, "slow"); st != "in progress" {
		t.Fatalf("slow is %s, want in progress", st)
	}
	if stateOf(s, "big-0") != "absent" || stateOf(s, "big-19") != "completed" {
		t.Fatalf("big-0 %s, big-19 %s; want the oldest answers dropped, the newest kept", stateOf(s, "big-0"), stateOf(s, "big-19"))
	}
	if s.bytes > s.maxBytes {
		t.Fatalf("store holds %d bytes, over its bound of %d", s.bytes, s.maxBytes)
	}
	if err := s.Complete(ctx, "slow", token, &Response{Status: 201}); err != nil {
		t.Fatalf("Complete(slow) = %v", err)
	}
}

func TestMemoryStoreMaxInProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("count", func(t *testing.T) {
		t.Parallel()
		clock := &fakeClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
		s := newTestMemoryStore(t, clock, WithMaxInProgress(2))
		long := claimed(t, s, "long", time.Hour)
		claimed(t, s, "short", time.Minute)
		if _, err := s.Claim(ctx, "third", "fp", time.Minute); !errors.Is(err, ErrFull) {
			t.Fatalf("a third claim = %v, want ErrFull", err)
		}
		// Completed keys do not count.
		if err := s.Complete(ctx, "long", long, &Response{Status: 200}); err != nil {
			t.Fatal(err)
		}
		claimed(t, s, "third", time.Hour)
		// A lease that ran out behind one that has not is found and dropped.
		clock.Advance(2 * time.Minute)
		claimed(t, s, "fourth", time.Minute)
		if stateOf(s, "short") != "absent" || stateOf(s, "third") != "in progress" {
			t.Fatalf("short %s, third %s; want the lapsed claim dropped", stateOf(s, "short"), stateOf(s, "third"))
		}
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		key := strings.Repeat("k", 1000)
		s := newTestMemoryStore(t, &fakeClock{}, WithMaxBytes(2*claimSize(key+"1", "fp", "1")))
		completed(t, s, "answer", 10)
		claimed(t, s, key+"1", time.Minute)
		claimed(t, s, key+"2", time.Minute)
		if _, err := s.Claim(ctx, key+"3", "fp", time.Minute); !errors.Is(err, ErrFull) {
			t.Fatalf("a claim past the byte bound = %v, want ErrFull", err)
		}
		if stateOf(s, "answer") != "absent" {
			t.Fatal("claims filling the byte bound did not push out the completed answer first")
		}
	})
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			opts []MemoryOption
			want int
		}{
			{nil, DefaultMaxInProgress},
			{[]MemoryOption{WithMaxKeys(10)}, 10},
			{[]MemoryOption{WithMaxKeys(10), WithMaxInProgress(3)}, 3},
		} {
			s := newTestMemoryStore(t, &fakeClock{}, tt.opts...)
			if s.maxInProgress != tt.want {
				t.Errorf("max in progress %d, want %d", s.maxInProgress, tt.want)
			}
		}
	})
}

// TestMemoryStoreBytesCountWhatIsHeld: the byte bound counted bodies by
// length, so an answer kept in a large buffer held far more than it was
// charged for, and the bound was not a bound on memory.
func TestMemoryStoreBytesCountWhatIsHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestMemoryStore(t, &fakeClock{}, WithMaxBytes(100<<10))
	for _, k := range []string{"a", "b"} {
		token := claimed(t, s, k, time.Minute)
		resp := &Response{Status: 200, Body: make([]byte, 1, 64<<10)}
		if err := s.Complete(ctx, k, token, resp); err != nil {
			t.Fatal(err)
		}
	}
	if stateOf(s, "a") != "absent" || stateOf(s, "b") != "completed" {
		t.Fatalf("a %s, b %s: two 64 KiB buffers held under a 100 KiB bound", stateOf(s, "a"), stateOf(s, "b"))
	}
	// Header fields cost their map slots, their value slices and their
	// strings' headers, not only their text: at least 40 bytes each on a
	// 64-bit machine (a string header and a slice header), even when empty.
	h := make(http.Header)
	text := 0
	for i := range 1000 {
		k := "X-" + strconv.Itoa(i)
		h[k] = []string{""}
		text += len(k)
	}
	if got, least := answerSize("k", "fp", &Response{Status: 200, Header: h}), int64(text+1000*(16+24)); got < least {
		t.Fatalf("1000 empty header fields counted as %d bytes, want at least %d", got, least)
	}
}

func TestMemoryStoreExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	s := newTestMemoryStore(t, clock, WithRetention(time.Hour))

	old := claimed(t, s, "k", time.Minute)
	waiting, _ := s.Claim(ctx, "k", "fp", time.Minute)
	if waiting.Token != "" || waiting.Response != nil || waiting.Fingerprint != "fp" {
		t.Fatalf("second Claim = %+v, want the key in progress", waiting)
	}
	clock.Advance(time.Minute) // the lease runs out: the next Claim takes the key over
	token := claimed(t, s, "k", time.Minute)
	select {
	case <-waiting.Changed:
	default:
		t.Fatal("a claim taken over did not wake its waiters")
	}
	if err := s.Complete(ctx, "k", old, &Response{Status: 200}); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("Complete with the lapsed token = %v, want ErrClaimLost", err)
	}
	if err := s.Complete(ctx, "k", token, &Response{Status: 201}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour - time.Nanosecond)
	if rec, _ := s.Claim(ctx, "k", "fp", time.Minute); rec.Response == nil || rec.Response.Status != 201 {
		t.Fatalf("Claim within the retention = %+v, want the stored 201", rec)
	}
	clock.Advance(time.Nanosecond)
	claimed(t, s, "k", time.Minute) // retention over: the key is new again
	if len(s.entries) != 1 {
		t.Fatalf("store holds %d entries, want 1", len(s.entries))
	}

	// Expired keys ahead of a Claim are dropped on the way, oldest first.
	for _, k := range []string{"a", "b", "c"} {
		completed(t, s, k, 1)
	}
	clock.Advance(2 * time.Hour)
	claimed(t, s, "d", time.Minute)
	if len(s.entries) != 1 || s.bytes != s.entries["d"].size {
		t.Fatalf("after expiry the store holds %d entries and %d bytes, want only d", len(s.entries), s.bytes)
	}
}

func TestMemoryStoreRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestMemoryStore(t, &fakeClock{now: time.Now()})
	token := claimed(t, s, "k", time.Minute)
	waiting, _ := s.Claim(ctx, "k", "fp", time.Minute)
	if err := s.Release(ctx, "k", "not the token"); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("Release with another token = %v, want ErrClaimLost", err)
	}
	if err := s.Release(ctx, "k", token); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waiting.Changed:
	default:
		t.Fatal("Release did not wake the waiters")
	}
	if err := s.Release(ctx, "k", token); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("second Release = %v, want ErrClaimLost", err)
	}
	next := claimed(t, s, "k", time.Minute)
	if next == token {
		t.Fatalf("a new claim reused token %q", token)
	}
	if s.bytes != s.entries["k"].size {
		t.Fatalf("byte count %d, want %d", s.bytes, s.entries["k"].size)
	}
}

// idemNopWriter is the cheapest http.ResponseWriter.
type idemNopWriter struct{ h http.Header }

func (w *idemNopWriter) Header() http.Header         { return w.h }
func (w *idemNopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *idemNopWriter) WriteHeader(int)             {}

// BenchmarkMiddleware measures the middleware in memory: the handler
// alone, a request without a key (the cost every other request pays), the
// replay of a stored
// answer, and a new key (claim, run, complete; the store evicts as it fills).
func BenchmarkMiddleware(b *testing.B) {
	body := `{"item":"tea","qty":2}`
	answer := []byte(`{"order":42,"item":"tea","qty":2}` + "\n")
	contentType := []string{"application/json"} // set without allocating, so no-key shows the middleware's own
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = contentType
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(answer)
	})
	h := mw(b, nil)(handler)
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", handler}, {"no-key", h}} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("POST", "/orders", nil)
			w := &idemNopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				c.h.ServeHTTP(w, req)
			}
		})
	}
	b.Run("replay", func(b *testing.B) {
		rd := strings.NewReader(body)
		req := httptest.NewRequest("POST", "/orders", rd)
		req.Header.Set(Header, "bench")
		w := &idemNopWriter{h: make(http.Header)}
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(body)
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
	b.Run("new-key", func(b *testing.B) {
		rd := strings.NewReader(body)
		req := httptest.NewRequest("POST", "/orders", rd)
		w := &idemNopWriter{h: make(http.Header)}
		keys := make([][]string, 1<<16) // more than the store holds: each is new when it comes round
		for i := range keys {
			keys[i] = []string{"new-" + strconv.Itoa(i)}
		}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(body)
			clear(w.h)
			req.Header[Header] = keys[i%len(keys)]
			i++
			h.ServeHTTP(w, req)
		}
	})
}

// mw returns the middleware over store, failing the benchmark on an error.
func mw(tb testing.TB, store Store, opts ...Option) func(http.Handler) http.Handler {
	tb.Helper()
	m, err := Middleware(store, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
