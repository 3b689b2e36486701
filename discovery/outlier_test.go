package discovery_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/internal/metrictest"
)

// The ejection cap was checked under the failing instance's own lock, so
// instances failing together all saw room: 10 failing at once ejected 6 where
// the cap is 5.
func TestEjectionCapExceededByConcurrentFailures(t *testing.T) {
	t.Parallel()
	const (
		instances = 10
		perRound  = 4 * instances // requests in flight at once, 4 per instance
		rounds    = 30
	)
	type round struct {
		arrived atomic.Int64
		allIn   chan struct{}
	}
	var current atomic.Pointer[round]
	f := newFleet(t, instances, func(w http.ResponseWriter, r *http.Request) {
		rd := current.Load()
		if rd.arrived.Add(1) == perRound {
			close(rd.allIn)
		}
		select { // every instance fails at once, when all requests are in
		case <-rd.allIn:
		case <-r.Context().Done():
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	worst := 0
	for i := range rounds {
		current.Store(&round{allIn: make(chan struct{})})
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		// A fresh client each round: no ejection yet, and round robin gives
		// every instance 4 of the requests.
		c := discovery.NewClient(f.reg,
			discovery.WithBalancer(discovery.RoundRobin),
			discovery.WithRetries(0),
			discovery.WithoutCircuitBreaker(),
			discovery.WithOutlierEjection(discovery.Ejection{Consecutive: 1}),
			discovery.WithMeterProvider(mp))
		var wg sync.WaitGroup
		for range perRound {
			wg.Go(func() { _, _ = call(c, "GET", "http://users/work", nil) })
		}
		wg.Wait()
		ejected, _ := metrictest.Value(t, reader, "pier.client.ejected", users)
		ejections, _ := metrictest.Value(t, reader, "pier.client.ejections", users)
		c.CloseIdleConnections()
		_ = mp.Shutdown(context.Background())
		worst = max(worst, int(ejected))
		if ejected > instances/2 || ejections > instances/2 {
			t.Fatalf("round %d: %v instances ejected (%v ejections) of %d, want at most %d (50%%)",
				i+1, ejected, ejections, instances, instances/2)
		}
		if ejected == 0 {
			t.Fatalf("round %d: nothing ejected: the test no longer ejects", i+1)
		}
	}
	t.Logf("at most %d of %d instances ejected over %d rounds", worst, instances, rounds)
}
