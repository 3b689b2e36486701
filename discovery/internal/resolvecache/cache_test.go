package resolvecache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 10 * time.Second

// source is a scripted remote: each fetch takes the next step from steps,
// blocking until the test sends one, as a blocking query would.
type source struct {
	steps   chan step
	fetches atomic.Int32
	index   sync.Map // service -> last index asked for
}

type step struct {
	instances []discovery.Instance
	index     uint64
	err       error
}

func (s *source) fetch(ctx context.Context, service string, index uint64) ([]discovery.Instance, uint64, error) {
	s.fetches.Add(1)
	s.index.Store(service, index)
	select {
	case st := <-s.steps:
		return st.instances, st.index, st.err
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

func inst(n int) discovery.Instance {
	return discovery.Instance{ID: "i" + string(rune('0'+n)), Service: "users", Addr: "10.0.0.1:8" + string(rune('0'+n))}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		tick := time.NewTimer(time.Millisecond)
		<-tick.C
	}
}

func TestLastKnownGoodSurvivesErrors(t *testing.T) {
	src := &source{steps: make(chan step)}
	c := New("test", src.fetch, Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	defer c.Close()

	go func() { src.steps <- step{instances: []discovery.Instance{inst(1), inst(2)}, index: 7} }()
	got, err := c.Resolve(context.Background(), "users")
	if err != nil || len(got) != 2 {
		t.Fatalf("first Resolve = %v, %v", got, err)
	}
	// The next fetch waits on index 7, as a blocking query does.
	waitUntil(t, "the watch asks for changes after index 7", func() bool {
		v, _ := src.index.Load("users")
		return v == uint64(7)
	})

	// The source fails, over and over: the set stays, staleness shows.
	for range 3 {
		src.steps <- step{err: errors.New("connection refused")}
	}
	// The watch took the third failure; wait until it has stored it.
	waitUntil(t, "the third failure is recorded", func() bool {
		st, _ := c.State("users")
		return st.Failures >= 3
	})
	got, err = c.Resolve(context.Background(), "users")
	if err != nil || len(got) != 2 {
		t.Fatalf("Resolve during failures = %v, %v; want the last-known-good set", got, err)
	}
	st, ok := c.State("users")
	if !ok || st.Err == nil || st.Failures < 3 || !st.Synced {
		t.Fatalf("State = %+v, want the error and 3 failures", st)
	}
	if st.Staleness(time.Now().Add(time.Minute)) < time.Minute {
		t.Fatalf("Staleness = %v, want it to grow while failing", st.Staleness(time.Now()))
	}

	// Recovery: an empty answer from a working source is the truth.
	src.steps <- step{instances: nil, index: 9}
	waitUntil(t, "the empty answer is taken", func() bool {
		_, err := c.Resolve(context.Background(), "users")
		return errors.Is(err, discovery.ErrNoInstances)
	})
	if st, _ := c.State("users"); st.Err != nil || st.Staleness(time.Now()) != 0 {
		t.Fatalf("State after recovery = %+v, want no error and no staleness", st)
	}
}

func TestFirstFetchFailing(t *testing.T) {
	src := &source{steps: make(chan step, 1)}
	c := New("test", src.fetch, Options{MinBackoff: time.Hour}) // no retry within the test
	defer c.Close()
	src.steps <- step{err: errors.New("agent down")}
	if _, err := c.Resolve(context.Background(), "users"); err == nil || errors.Is(err, discovery.ErrNoInstances) {
		t.Fatalf("Resolve = %v, want the source's error, not ErrNoInstances", err)
	}
}

func TestIndexGoingBackwardsResets(t *testing.T) {
	src := &source{steps: make(chan step, 2)}
	c := New("test", src.fetch, Options{})
	defer c.Close()
	src.steps <- step{instances: []discovery.Instance{inst(1)}, index: 50}
	src.steps <- step{instances: []discovery.Instance{inst(1)}, index: 3} // a snapshot restore
	if _, err := c.Resolve(context.Background(), "users"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the watch starts over from index 0", func() bool {
		v, _ := src.index.Load("users")
		return src.fetches.Load() >= 3 && v == uint64(0)
	})
}

func TestResolveHonoursContextAndClose(t *testing.T) {
	src := &source{steps: make(chan step)} // never answers
	c := New("test", src.fetch, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Resolve(ctx, "users"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Resolve with a cancelled context = %v", err)
	}
	if _, err := c.Resolve(context.Background(), "Not A Name"); err == nil {
		t.Fatal("an invalid service name resolved")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := c.Resolve(context.Background(), "orders"); err == nil {
		t.Fatal("Resolve after Close succeeded")
	}
}

func BenchmarkResolveCached(b *testing.B) {
	src := &source{steps: make(chan step, 1)}
	c := New("test", src.fetch, Options{})
	defer c.Close()
	src.steps <- step{instances: []discovery.Instance{inst(1), inst(2), inst(3)}, index: 1}
	ctx := context.Background()
	if _, err := c.Resolve(ctx, "users"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Resolve(ctx, "users"); err != nil {
			b.Fatal(err)
		}
	}
}

// Regression: Close during a service's first fetch left Resolve waiting forever.
func TestCloseReleasesAWaitingFirstResolve(t *testing.T) {
	src := &source{steps: make(chan step)} // never answers
	c := New("test", src.fetch, Options{})
	got := make(chan error, 1)
	go func() {
		_, err := c.Resolve(context.Background(), "users") // no deadline of its own
		got <- err
	}()
	waitUntil(t, "the first fetch is running", func() bool { return src.fetches.Load() == 1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Resolve = %v, want the resolver closed", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Resolve still waits after Close")
	}
}

// Regression: a service resolved before Close kept answering from the cache.
func TestResolveOfAKnownServiceFailsAfterClose(t *testing.T) {
	src := &source{steps: make(chan step, 1)}
	c := New("test", src.fetch, Options{})
	src.steps <- step{instances: []discovery.Instance{inst(1)}, index: 1}
	if _, err := c.Resolve(context.Background(), "users"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(context.Background(), "users"); err == nil {
		t.Fatal("Resolve after Close answered from the cache")
	}
}

func TestFirstFailureErrorIsPrefixedOnce(t *testing.T) {
	src := &source{steps: make(chan step, 1)}
	c := New("test", src.fetch, Options{MinBackoff: time.Hour})
	defer c.Close()
	src.steps <- step{err: errors.New("agent down")}
	_, err := c.Resolve(context.Background(), "users")
	if err == nil || err.Error() != `test: resolve "users": agent down` {
		t.Fatalf("Resolve error = %v, want one prefix", err)
	}
}

// Regression: after a failure the watch kept blocking on the last index, so the
// set stayed stale for a whole wait once the source was back.
func TestAfterAFailureTheWatchAsksAfresh(t *testing.T) {
	src := &source{steps: make(chan step)}
	c := New("test", src.fetch, Options{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	defer c.Close()
	go func() { src.steps <- step{instances: []discovery.Instance{inst(1)}, index: 40} }()
	if _, err := c.Resolve(context.Background(), "users"); err != nil {
		t.Fatal(err)
	}
	src.steps <- step{err: errors.New("agent restarting")}
	waitUntil(t, "the watch asks with index 0 after the failure", func() bool {
		v, _ := src.index.Load("users")
		return src.fetches.Load() >= 3 && v == uint64(0)
	})
}
