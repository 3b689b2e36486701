package consul_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pier-go/pier/discovery/consul"
	"github.com/pier-go/pier/internal/metrictest"
)

// metricValue returns the value of the point of the metric name for the
// service users on the registry consul, and whether there is one.
func metricValue(tb testing.TB, r *sdkmetric.ManualReader, name string) (float64, bool) {
	tb.Helper()
	return metrictest.Value(tb, r, name, attribute.String("pier.service", "users"), attribute.String("registry", "consul"))
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	fake := newFakeConsul(t)
	fake.set("users", fakeEntry("users-1", "10.0.0.1", "", 8080), fakeEntry("users-2", "10.0.0.2", "", 8080))
	r := newRegistry(t, fakeClient(t, fake.srv), consul.WithMeterProvider(mp), consul.WithBackoff(time.Millisecond, 10*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := r.Resolve(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	if n, _ := metricValue(t, reader, "pier.discovery.instances"); n != 2 {
		t.Errorf("pier.discovery.instances = %v, want 2", n)
	}
	if v, ok := metricValue(t, reader, "pier.discovery.staleness"); !ok || v != 0 {
		t.Errorf("pier.discovery.staleness = %v, %v; want 0 while the watch succeeds", v, ok)
	}

	fake.fail(true, 0)
	waitUntil(t, "failed queries are counted and staleness grows", func() error {
		n, _ := metricValue(t, reader, "pier.discovery.watch.errors")
		v, _ := metricValue(t, reader, "pier.discovery.staleness")
		if n < 1 || v <= 0 {
			return fmt.Errorf("watch errors %v, staleness %v", n, v)
		}
		return nil
	})
	if n, _ := metricValue(t, reader, "pier.discovery.instances"); n != 2 {
		t.Errorf("pier.discovery.instances = %v while the agent fails, want the last-known-good 2", n)
	}

	_ = r.Close()
	for _, name := range []string{"pier.discovery.instances", "pier.discovery.staleness"} {
		if v, ok := metricValue(t, reader, name); ok {
			t.Errorf("%s = %v after Close, want its callback unregistered", name, v)
		}
	}
}
