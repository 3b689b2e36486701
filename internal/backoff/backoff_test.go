package backoff

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBackoffDoublesWithinJitterAndResets(t *testing.T) {
	b := New(10*time.Millisecond, 80*time.Millisecond)
	steps := []time.Duration{10, 20, 40, 80, 80, 80}
	for round := range 2 {
		for i, step := range steps {
			step *= time.Millisecond
			got := b.Next()
			if got < step/2 || got > step {
				t.Fatalf("round %d, wait %d = %v, want within [%v, %v]", round, i, got, step/2, step)
			}
		}
		b.Reset()
	}
}

func TestBackoffJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[New(time.Second, time.Second).Next()] = true
	}
	if len(seen) < 50 {
		t.Fatalf("100 first waits took %d distinct values: not jittered", len(seen))
	}
}

func TestNewMendsBounds(t *testing.T) {
	b := New(0, -1)
	if got := b.Next(); got < 0 || got > time.Millisecond {
		t.Fatalf("Next() = %v, want within [0, 1ms]", got)
	}
}
