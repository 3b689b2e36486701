package service_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/service"
)

// stuckRegistry is a registry whose Deregister hangs until its context ends:
// a registry agent that has stopped answering while the instance stops.
type stuckRegistry struct {
	*discovery.Memory
	entered chan struct{} // closed when Deregister is called
	ended   chan error    // receives Deregister's ctx.Err() once it ends
	once    sync.Once
}

func newStuckRegistry() *stuckRegistry {
	return &stuckRegistry{Memory: discovery.NewMemory(), entered: make(chan struct{}), ended: make(chan error, 1)}
}

func (s *stuckRegistry) Deregister(ctx context.Context, _ discovery.Instance) error {
	s.once.Do(func() { close(s.entered) })
	<-ctx.Done()
	s.ended <- ctx.Err()
	return ctx.Err()
}

// stopSlack is what a stop may take beyond the configured times: scheduling on
// a busy machine, closing connections, logging.
const stopSlack = 2 * time.Second

// deregisterFloor is the least time a Service gives its registry to
// deregister, whatever the drain delay (see WithRegistry).
const deregisterFloor = time.Second

// returnsWithin fails the test unless Run returns within bound of stopping.
func (r *running) returnsWithin(t *testing.T, stopped time.Time, bound time.Duration) error {
	t.Helper()
	timer := time.NewTimer(bound - time.Since(stopped))
	defer timer.Stop()
	select {
	case err := <-r.done:
		close(r.done)
		return err
	case <-timer.C:
		t.Fatalf("Run did not return within %v of the stop (the configured times and %v of slack)", bound, stopSlack)
		return nil
	}
}

// TestHangingDeregisterStretchesStop: deregistration used to have a fixed
// 10 s of its own before the drain, so a registry that did not answer made a
// Service configured for a 100 ms drain and a 100 ms timeout take 10.1 s to
// stop. It now runs during the drain delay, bounded by it (or by a floor of
// 1 s, whichever is longer).
func TestHangingDeregisterStretchesStop(t *testing.T) {
	t.Parallel()
	const drainDelay, timeout, stopBudget = 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond
	reg := newStuckRegistry()
	r := start(t, nil, service.WithRegistry(reg), service.WithShutdown(drainDelay, timeout),
		service.WithStopTimeout(stopBudget))
	waitUntil(t, "the instance is registered", func() bool { return len(resolved(reg, "test")) == 1 })

	stopped := time.Now()
	r.cancel()
	err := r.returnsWithin(t, stopped, max(drainDelay, deregisterFloor)+timeout+stopBudget+stopSlack)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "deregister") {
		t.Fatalf("Run = %v, want the deregistration's deadline reported", err)
	}
	select {
	case <-reg.entered:
	default:
		t.Fatal("Deregister was not called")
	}
	select {
	case err := <-reg.ended:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Deregister's context ended with %v, want its deadline", err)
		}
	default:
		t.Fatal("Run returned while Deregister was still running")
	}
}

// TestStopHooksStarvedByEarlierSteps: the OnStop hooks used to run only after
// a 10 s deregistration, the drain and the whole shutdown timeout, and then
// had a shutdown timeout of their own, as did the admin listener and the
// telemetry flush: with the defaults a stop could take over a minute, and a
// process manager's grace period (Kubernetes: 30 s) killed it before its hooks
// ran. Now everything that can hang (the registry, a stuck request, the hooks)
// is bounded: Run returns within drain + timeout + stop timeout, and the
// hooks' context ends within that.
func TestStopHooksStarvedByEarlierSteps(t *testing.T) {
	t.Parallel()
	const drainDelay, timeout, stopBudget = 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond
	reg := newStuckRegistry()
	entered := make(chan struct{})
	release := make(chan struct{})
	hookDone := make(chan error, 2)
	var stopped time.Time
	hookEnd := make(chan time.Duration, 2)
	hook := func(ctx context.Context) error {
		<-ctx.Done() // a hook that takes all the time it is given
		hookEnd <- time.Since(stopped)
		hookDone <- ctx.Err()
		return nil
	}
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /stuck", func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release // ignores its context: only the shutdown timeout ends it
		})
	}, service.WithRegistry(reg), service.WithShutdown(drainDelay, timeout), service.WithStopTimeout(stopBudget),
		service.WithoutRequestTimeout(), service.WithOnStop(hook), service.WithOnStop(hook))
	t.Cleanup(func() { close(release) })
	waitUntil(t, "the instance is registered", func() bool { return len(resolved(reg, "test")) == 1 })
	failed := make(chan error, 1)
	go func() {
		resp, err := noKeepAlive().Get(r.url + "/stuck")
		if err == nil {
			drain(resp)
		}
		failed <- err
	}()
	<-entered

	stopped = time.Now()
	r.cancel()
	bound := max(drainDelay, deregisterFloor) + timeout + stopBudget + stopSlack
	err := r.returnsWithin(t, stopped, bound)
	if !strings.Contains(err.Error(), "deregister") || !strings.Contains(err.Error(), "shutdown") {
		t.Fatalf("Run = %v, want the deregistration and the shutdown deadlines reported", err)
	}
	for range 2 {
		if err := <-hookDone; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("an OnStop hook's context ended with %v, want its deadline", err)
		}
		if d := <-hookEnd; d > bound {
			t.Fatalf("an OnStop hook's context ended %v after the stop began, beyond %v", d, bound)
		}
	}
	if err := <-failed; err == nil {
		t.Fatal("the stuck request got an answer; want its connection closed at the shutdown timeout")
	}
}
