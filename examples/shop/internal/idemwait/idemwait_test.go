package idemwait_test

import (
	"testing"

	"github.com/pier-go/pier/examples/shop/internal/idemwait"
)

func TestWaiters(t *testing.T) {
	t.Parallel()
	var w idemwait.Waiters
	w.Wake("a") // nobody waits: nothing to do

	a1, a2, b := w.Chan("a"), w.Chan("a"), w.Chan("b")
	if a1 != a2 {
		t.Fatal("two Chan calls for one key gave different channels")
	}
	w.Wake("a")
	for name, ch := range map[string]<-chan struct{}{"a": a1, "b": b} {
		select {
		case <-ch:
			if name != "a" {
				t.Errorf("channel %q closed by Wake(a)", name)
			}
		default:
			if name == "a" {
				t.Error("channel a still open after Wake(a)")
			}
		}
	}
	if w.Chan("a") == a1 {
		t.Error("Chan after Wake returned the closed channel")
	}
}
