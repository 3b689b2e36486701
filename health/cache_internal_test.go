package health

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bound is how long a test waits for something that should happen at once.
const bound = 10 * time.Second

// fakeClock is a clock that moves only when told. It is safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestMonitor returns a serving Monitor whose clock is the returned fakeClock.
func newTestMonitor(tb testing.TB, opts ...Option) (*Monitor, *fakeClock) {
	tb.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	m, err := New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	m.now = clock.Now
	m.SetState(StateServing)
	return m, clock
}

// gate is a Checker that counts its calls and blocks, ignoring its context, until
// released. The test releases it at the latest in its cleanup.
type gate struct {
	calls   atomic.Int32
	release chan struct{}
	once    sync.Once
}

func newGate(tb testing.TB) *gate {
	g := &gate{release: make(chan struct{})}
	tb.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func (g *gate) Check(context.Context) error {
	g.calls.Add(1)
	<-g.release
	return nil
}

// eventually fails the test unless cond becomes true within bound.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			tb.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// lookup returns m's check called name.
func lookup(tb testing.TB, m *Monitor, name string) *check {
	tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.checks {
		if c.name == name {
			return c
		}
	}
	tb.Fatalf("no check %q", name)
	return nil
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want Status
	}{
		{name: "passing result", err: nil, want: StatusPass},
		{name: "failing result", err: errors.New("refused"), want: StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, clock := newTestMonitor(t, WithCacheTTL(time.Minute))
			var calls atomic.Int32
			err := m.Add("db", CheckerFunc(func(context.Context) error {
				calls.Add(1)
				return tt.err
			}))
			if err != nil {
				t.Fatal(err)
			}
			steps := []struct {
				advance   time.Duration
				wantCalls int32
			}{
				{0, 1},                  // the first probe runs it
				{0, 1},                  // the next ones within the TTL reuse it
				{30 * time.Second, 1},   //
				{30*time.Second - 1, 1}, // one nanosecond before expiry
				{1, 2},                  // at expiry it runs again
				{59 * time.Second, 2},   //
				{time.Minute, 3},        //
			}
			for i, s := range steps {
				clock.Advance(s.advance)
				for range 5 {
					rep := m.Report(context.Background())
					if got := rep.Checks[0].Status; got != tt.want {
						t.Errorf("step %d: status %s, want %s", i, got, tt.want)
					}
				}
				if n := calls.Load(); n != s.wantCalls {
					t.Fatalf("step %d: checker called %d times, want %d", i, n, s.wantCalls)
				}
			}
		})
	}
}

func TestCacheDisabled(t *testing.T) {
	t.Parallel()
	{
		t.Run("WithoutCache", func(t *testing.T) {
			t.Parallel()
			m, _ := newTestMonitor(t, WithoutCache())
			var calls atomic.Int32
			if err := m.Add("db", CheckerFunc(func(context.Context) error { calls.Add(1); return nil })); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				m.Report(context.Background())
			}
			if n := calls.Load(); n != 5 {
				t.Errorf("checker called %d times, want 5", n)
			}
		})
	}
}

func TestConcurrentProbesShareOneRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ttl  time.Duration
	}{
		{name: "cached", ttl: DefaultCacheTTL},
		{name: "uncached", ttl: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const probes = 50
			m, _ := newTestMonitor(t, cacheOption(tt.ttl))
			g := newGate(t)
			if err := m.Add("db", g, Timeout(time.Hour)); err != nil {
				t.Fatal(err)
			}
			c := lookup(t, m, "db")

			reports := make(chan Report, probes)
			var wg sync.WaitGroup
			defer wg.Wait()
			defer g.open() // before the Wait, should the test fail early
			wg.Go(func() { reports <- m.Report(context.Background()) })
			eventually(t, "the first probe to start the check", func() bool { return g.calls.Load() == 1 })
			for range probes - 1 {
				wg.Go(func() { reports <- m.Report(context.Background()) })
			}
			eventually(t, "the other probes to join the run", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return c.flight != nil && c.flight.waiters == probes-1
			})
			g.open()
			for range probes {
				select {
				case rep := <-reports:
					if !rep.Ready {
						t.Errorf("report not ready: %+v", rep)
					}
				case <-time.After(bound):
					t.Fatal("probes did not return")
				}
			}
			if n := g.calls.Load(); n != 1 {
				t.Errorf("%d concurrent probes called the checker %d times, want 1", probes, n)
			}
		})
	}
}

func TestNoPileUpWhileStuck(t *testing.T) {
	t.Parallel()
	m, clock := newTestMonitor(t) // DefaultCacheTTL
	g := newGate(t)
	if err := m.Add("db", g, Timeout(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	c := lookup(t, m, "db")

	rep := m.Report(context.Background())
	if got := rep.Checks[0]; got.Status != StatusFail || got.Error != "timed out after 20ms" {
		t.Fatalf("first run = %s %q, want fail, timed out after 20ms", got.Status, got.Error)
	}

	// Past the TTL, while the checker is still stuck, probes start nothing new.
	clock.Advance(2 * time.Second)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			rep := m.Report(context.Background())
			want := "previous run still in progress since 2s"
			if got := rep.Checks[0]; got.Status != StatusFail || got.Error != want || got.Duration != 0 {
				t.Errorf("stuck run = %s %q %v, want fail %q 0s", got.Status, got.Error, got.Duration, want)
			}
		})
	}
	wg.Wait()
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("checker called %d times while stuck, want 1", n)
	}

	// Once the checker returns, the next probe runs it again.
	g.open()
	eventually(t, "the stuck run to end", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.running
	})
	rep = m.Report(context.Background())
	if got := rep.Checks[0]; got.Status != StatusPass {
		t.Errorf("after release = %s %q, want pass", got.Status, got.Error)
	}
	if n := g.calls.Load(); n != 2 {
		t.Errorf("checker called %d times, want 2", n)
	}
}

func TestWaitingProbeGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	m, _ := newTestMonitor(t)
	g := newGate(t)
	if err := m.Add("db", g, Timeout(time.Hour)); err != nil {
		t.Fatal(err)
	}
	leader := make(chan Report, 1)
	go func() { leader <- m.Report(context.Background()) }()
	eventually(t, "the leader to start the check", func() bool { return g.calls.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := m.Report(ctx)
	want := "probe gave up waiting for the check: context canceled"
	if got := rep.Checks[0]; got.Status != StatusFail || got.Error != want {
		t.Errorf("waiting probe = %s %q, want fail %q", got.Status, got.Error, want)
	}

	g.open()
	select {
	case rep := <-leader:
		if !rep.Ready {
			t.Errorf("leader report not ready: %+v", rep)
		}
	case <-time.After(bound):
		t.Fatal("leader did not return")
	}
	// The give-up was not cached: the leader's result is.
	if rep := m.Report(context.Background()); !rep.Ready || g.calls.Load() != 1 {
		t.Errorf("cached report = %+v after %d calls, want ready after 1", rep, g.calls.Load())
	}
}

func TestDurationUsesClock(t *testing.T) {
	t.Parallel()
	m, clock := newTestMonitor(t)
	err := m.Add("db", CheckerFunc(func(context.Context) error {
		clock.Advance(1500 * time.Microsecond)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	start := clock.Now()
	got := m.Report(context.Background()).Checks[0]
	if got.Duration != 1500*time.Microsecond || !got.CheckedAt.Equal(start.Add(got.Duration)) {
		t.Errorf("duration, checked at = %v, %v; want 1.5ms, %v", got.Duration, got.CheckedAt, start.Add(1500*time.Microsecond))
	}
}

// cacheOption is WithCacheTTL(ttl), or WithoutCache for a negative ttl.
func cacheOption(ttl time.Duration) Option {
	if ttl < 0 {
		return WithoutCache()
	}
	return WithCacheTTL(ttl)
}
