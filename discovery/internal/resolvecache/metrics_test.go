package resolvecache

import (
	"context"
	"errors"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/internal/metrictest"
)

// point returns the value of the point of the metric name whose attributes are
// users' on the registry "test", and whether there is one.
func point(tb testing.TB, r *sdkmetric.ManualReader, name string) (float64, bool) {
	tb.Helper()
	return metrictest.Value(tb, r, name, discovery.ServiceKey.String("users"), RegistryKey.String("test"))
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	src := &source{steps: make(chan step)}
	c := New("test", src.fetch, Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Meter: mp.Meter("test")})
	defer c.Close()

	if _, ok := point(t, reader, "pier.discovery.instances"); ok {
		t.Fatal("instances reported for a service nothing resolved")
	}
	go func() { src.steps <- step{instances: []discovery.Instance{inst(1), inst(2)}, index: 7} }()
	if _, err := c.Resolve(context.Background(), "users"); err != nil {
		t.Fatal(err)
	}
	if n, _ := point(t, reader, "pier.discovery.instances"); n != 2 {
		t.Errorf("pier.discovery.instances = %v, want 2", n)
	}
	if s, ok := point(t, reader, "pier.discovery.staleness"); !ok || s != 0 {
		t.Errorf("pier.discovery.staleness = %v, %v; want 0 while the watch succeeds", s, ok)
	}
	if n, _ := point(t, reader, "pier.discovery.watch.errors"); n != 0 {
		t.Errorf("pier.discovery.watch.errors = %v before any failure", n)
	}

	for range 2 {
		src.steps <- step{err: errors.New("connection refused")}
	}
	waitUntil(t, "two failures are counted", func() bool {
		n, _ := point(t, reader, "pier.discovery.watch.errors")
		return n == 2
	})
	if s, _ := point(t, reader, "pier.discovery.staleness"); s <= 0 {
		t.Errorf("pier.discovery.staleness = %v while the source fails, want > 0", s)
	}
	if n, _ := point(t, reader, "pier.discovery.instances"); n != 2 {
		t.Errorf("pier.discovery.instances = %v while the source fails, want the last-known-good 2", n)
	}

	_ = c.Close()
	_ = c.Close()
	for _, name := range []string{"pier.discovery.instances", "pier.discovery.staleness"} {
		if v, ok := point(t, reader, name); ok {
			t.Errorf("%s = %v after Close, want the callback unregistered", name, v)
		}
	}
}
