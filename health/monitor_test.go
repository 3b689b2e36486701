package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pier-go/pier/health"
)

// bound is how long a test waits for something that should happen at once. It is
// generous because CI machines are noisy; tests never assert wall-clock durations.
const bound = 10 * time.Second

// reportWithin runs m.Report and fails the test if it has not returned within
// bound.
func reportWithin(t *testing.T, ctx context.Context, m *health.Monitor) health.Report {
	t.Helper()
	done := make(chan health.Report, 1)
	go func() { done <- m.Report(ctx) }()
	select {
	case rep := <-done:
		return rep
	case <-time.After(bound):
		t.Fatalf("Report did not return within %v", bound)
		return health.Report{}
	}
}

// hanging returns a Checker that ignores its context and blocks until the test
// ends, counting its calls.
func hanging(t *testing.T) (health.Checker, *atomic.Int32) {
	t.Helper()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var calls atomic.Int32
	return health.CheckerFunc(func(context.Context) error {
		calls.Add(1)
		<-release
		return nil
	}), &calls
}

func TestAddErrors(t *testing.T) {
	t.Parallel()
	ok := health.CheckerFunc(func(context.Context) error { return nil })
	tests := []struct {
		name    string
		check   string
		c       health.Checker
		opts    []health.CheckOption
		wantErr string
	}{
		{name: "empty name", check: "", c: ok, wantErr: "health: check name is empty"},
		{name: "nil checker", check: "db", c: nil, wantErr: `health: check "db": checker is nil`},
		{name: "nil CheckerFunc", check: "db", c: health.CheckerFunc(nil), wantErr: `health: check "db": checker is a nil CheckerFunc`},
		{name: "duplicate", check: "existing", c: ok, wantErr: `health: check "existing" already added`},
		{name: "negative timeout", check: "db", c: ok, opts: []health.CheckOption{health.Timeout(-time.Second)}, wantErr: `health: check "db": negative timeout -1s`},
		{name: "nil option", check: "db", c: ok, opts: []health.CheckOption{nil}, wantErr: `health: check "db": nil option`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := mustNew(t)
			if err := m.Add("existing", ok); err != nil {
				t.Fatal(err)
			}
			err := m.Add(tt.check, tt.c, tt.opts...)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Add error = %v, want %q", err, tt.wantErr)
			}
			if n := len(m.Report(context.Background()).Checks); n != 1 {
				t.Errorf("after a failed Add the Monitor has %d checks, want 1", n)
			}
		})
	}
}

func TestAddWhileServing(t *testing.T) {
	t.Parallel()
	m := mustNew(t, health.WithoutCache())
	m.SetState(health.StateServing)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := m.Add(fmt.Sprint("check-", i), passing()); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() { m.Report(context.Background()) })
	}
	wg.Wait()
	rep := m.Report(context.Background())
	if len(rep.Checks) != n || !rep.Ready {
		t.Errorf("report has %d checks, ready %v; want %d, true", len(rep.Checks), rep.Ready, n)
	}
}

func TestReportOrderAndParallel(t *testing.T) {
	t.Parallel()
	// Each check waits until all have started, so they can only pass when Report
	// runs them in parallel.
	names := []string{"zeta", "alpha", "mid", "beta"}
	var started sync.WaitGroup
	started.Add(len(names))
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	m := mustNew(t)
	for _, name := range names {
		err := m.Add(name, health.CheckerFunc(func(ctx context.Context) error {
			started.Done()
			select {
			case <-all:
				return nil
			case <-ctx.Done():
				return errors.New("the other checks did not start: not run in parallel")
			}
		}), health.Timeout(bound))
		if err != nil {
			t.Fatal(err)
		}
	}
	m.SetState(health.StateServing)
	rep := reportWithin(t, context.Background(), m)
	var got []string
	for _, r := range rep.Checks {
		got = append(got, r.Name)
		if r.Status != health.StatusPass {
			t.Errorf("check %q: %s %s", r.Name, r.Status, r.Error)
		}
	}
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("check order (-want +got):\n%s", diff)
	}
}

func TestHangingCheckIsCutOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		critical bool
		want     health.Status
	}{
		{name: "critical", critical: true, want: health.StatusFail},
		{name: "non-critical", critical: false, want: health.StatusWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hang, calls := hanging(t)
			opts := []health.CheckOption{health.Timeout(50 * time.Millisecond)}
			if !tt.critical {
				opts = append(opts, health.NonCritical())
			}
			m := newMonitor(t, health.StateServing,
				[]entry{{name: "ok", c: passing()}, {name: "stuck", c: hang, opts: opts}},
				health.WithoutCache()) // every probe tries to run it again

			rep := reportWithin(t, context.Background(), m)
			got := rep.Checks[1]
			if got.Status != tt.want || got.Error != "timed out after 50ms" {
				t.Errorf("stuck check = %s %q, want %s %q", got.Status, got.Error, tt.want, "timed out after 50ms")
			}
			if rep.Checks[0].Status != health.StatusPass {
				t.Errorf("the other check = %s %q, want pass", rep.Checks[0].Status, rep.Checks[0].Error)
			}
			if rep.Ready != !tt.critical {
				t.Errorf("ready = %v, want %v", rep.Ready, !tt.critical)
			}

			// While the first run is stuck, probes start no new run.
			for range 5 {
				rep := reportWithin(t, context.Background(), m)
				if got := rep.Checks[1]; got.Status != tt.want || !strings.HasPrefix(got.Error, "previous run still in progress since ") {
					t.Errorf("stuck check = %s %q, want %s and previous run still in progress", got.Status, got.Error, tt.want)
				}
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("the hanging checker was called %d times, want 1", n)
			}
		})
	}
}

func TestCheckHonouringDeadlineTimesOut(t *testing.T) {
	t.Parallel()
	m := newMonitor(t, health.StateServing, []entry{{
		name: "slow",
		c: health.CheckerFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return fmt.Errorf("query: %w", ctx.Err())
		}),
		opts: []health.CheckOption{health.Timeout(20 * time.Millisecond)},
	}})
	rep := reportWithin(t, context.Background(), m)
	if got := rep.Checks[0]; got.Status != health.StatusFail || got.Error != "timed out after 20ms" {
		t.Errorf("check = %s %q, want fail %q", got.Status, got.Error, "timed out after 20ms")
	}
}

func TestPanickingCheckIsRecovered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{name: "string", value: "boom", want: "panic: boom"},
		{name: "error", value: errors.New("nil map"), want: "panic: nil map"},
		{name: "nil", value: nil, want: "panic: panic called with nil argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			m := newMonitor(t, health.StateServing, []entry{{name: "bad", c: health.CheckerFunc(func(context.Context) error {
				calls.Add(1)
				panic(tt.value)
			})}}, health.WithoutCache())
			for i := range 2 { // the second run shows the panic left no stuck run behind
				rep := reportWithin(t, context.Background(), m)
				if got := rep.Checks[0]; got.Status != health.StatusFail || !strings.HasPrefix(got.Error, tt.want) {
					t.Errorf("run %d: check = %s %q, want fail %q", i, got.Status, got.Error, tt.want)
				}
			}
			if n := calls.Load(); n != 2 {
				t.Errorf("checker called %d times, want 2", n)
			}
		})
	}
}

func TestCancelledProbeDoesNotCancelCheck(t *testing.T) {
	t.Parallel()
	var seen atomic.Value
	m := newMonitor(t, health.StateServing, []entry{{name: "db", c: health.CheckerFunc(func(ctx context.Context) error {
		seen.Store(ctx.Value(ctxKey{}))
		return ctx.Err()
	})}})
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "probe"))
	cancel()
	rep := reportWithin(t, ctx, m)
	if got := rep.Checks[0]; got.Status != health.StatusPass {
		t.Errorf("check = %s %q, want pass: the probe's cancellation must not reach the check", got.Status, got.Error)
	}
	if got := seen.Load(); got != "probe" {
		t.Errorf("check saw context value %v, want the probe's", got)
	}
	// The next probe shares the cached, uncancelled result.
	if rep := m.Report(context.Background()); !rep.Ready {
		t.Errorf("next report not ready: %+v", rep)
	}
}

type ctxKey struct{}

func TestState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state health.State
		text  string
	}{
		{health.StateStarting, "starting"},
		{health.StateServing, "serving"},
		{health.StateDraining, "draining"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			if got := tt.state.String(); got != tt.text {
				t.Errorf("String() = %q, want %q", got, tt.text)
			}
			b, err := json.Marshal(tt.state)
			if err != nil || string(b) != `"`+tt.text+`"` {
				t.Errorf("json.Marshal = %s, %v; want %q", b, err, tt.text)
			}
			var back health.State
			if err := json.Unmarshal(b, &back); err != nil || back != tt.state {
				t.Errorf("json.Unmarshal = %v, %v; want %v", back, err, tt.state)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		if got := health.State(7).String(); got != "State(7)" {
			t.Errorf("String() = %q, want State(7)", got)
		}
		var s health.State
		if err := s.UnmarshalText([]byte("stopped")); err == nil {
			t.Error("UnmarshalText(stopped) succeeded")
		}
	})
	t.Run("monitor", func(t *testing.T) {
		t.Parallel()
		m := mustNew(t)
		if got := m.State(); got != health.StateStarting {
			t.Errorf("new Monitor state = %v, want starting", got)
		}
		m.SetState(health.StateDraining)
		if got := m.State(); got != health.StateDraining {
			t.Errorf("state = %v, want draining", got)
		}
	})
}

func TestResultJSON(t *testing.T) {
	t.Parallel()
	in := health.Result{
		Name: "db", Critical: true, Status: health.StatusFail, Duration: 1234567 * time.Nanosecond,
		Error: "refused", CheckedAt: time.Date(2026, 11, 2, 10, 4, 5, 0, time.UTC),
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"db","critical":true,"status":"fail","duration_ms":1.234,"error":"refused","checked_at":"2026-11-02T10:04:05Z"}`
	if string(b) != want {
		t.Errorf("json = %s\nwant   %s", b, want)
	}
	var out health.Result
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	in.Duration = 1234 * time.Microsecond // the wire keeps microseconds
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]health.Option{
		"negative TTL": health.WithCacheTTL(-time.Second),
		"nil":          nil,
	} {
		if m, err := health.New(opt); err == nil {
			t.Errorf("%s: New = %v, nil; want an error", name, m)
		}
	}
}

// TestZeroTimeoutIsTheDefault: a zero keeps the default, as every option does.
func TestZeroTimeoutIsTheDefault(t *testing.T) {
	t.Parallel()
	m := mustNew(t)
	if err := m.Add("db", health.CheckerFunc(func(context.Context) error { return nil }), health.Timeout(0)); err != nil {
		t.Fatalf("Add with Timeout(0) = %v, want the default timeout", err)
	}
}
