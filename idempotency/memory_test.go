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
	t.Run("a claim forced out wakes its waiters", func(t *testing.T) {
		t.Parallel()
		s := newTestMemoryStore(t, &fakeClock{}, WithMaxKeys(1))
		token := claimed(t, s, "a", time.Minute)
		rec, _ := s.Claim(context.Background(), "a", "fp", time.Minute)
		if rec.Changed == nil {
			t.Fatal("a key in progress came without a Changed channel")
		}
		claimed(t, s, "b", time.Minute)
		select {
		case <-rec.Changed:
		default:
			t.Fatal("evicting a claim did not close its Changed channel")
		}
		if err := s.Complete(context.Background(), "a", token, &Response{Status: 200}); !errors.Is(err, ErrClaimLost) {
			t.Fatalf("Complete of an evicted claim = %v, want ErrClaimLost", err)
		}
	})
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
			req.Header[idempotencyKey] = keys[i%len(keys)]
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
