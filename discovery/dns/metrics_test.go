package dns_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pier-go/pier/discovery/dns"
	"github.com/pier-go/pier/internal/metrictest"
)

// metricValue returns the value of the point of the metric name for the
// service users on the registry dns, and whether there is one.
func metricValue(tb testing.TB, r *sdkmetric.ManualReader, name string) (float64, bool) {
	tb.Helper()
	return metrictest.Value(tb, r, name, attribute.String("pier.service", "users"), attribute.String("registry", "dns"))
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s := newServer(t)
	s.setSRV(usersSRV, srvTarget{pod(1), 8001}, srvTarget{pod(2), 8002})
	s.setIPs(pod(1), "127.0.0.1")
	s.setIPs(pod(2), "127.0.0.2")
	r := newResolver(t, fast(s, dns.WithMeterProvider(mp))...)

	if _, err := resolve(t, r, "users"); err != nil {
		t.Fatal(err)
	}
	if n, _ := metricValue(t, reader, "pier.discovery.instances"); n != 2 {
		t.Errorf("pier.discovery.instances = %v, want 2", n)
	}
	if v, ok := metricValue(t, reader, "pier.discovery.staleness"); !ok || v != 0 {
		t.Errorf("pier.discovery.staleness = %v, %v; want 0 while lookups succeed", v, ok)
	}

	s.setMode(servFail)
	waitUntil(t, "failed lookups are counted and staleness grows", func() bool {
		n, _ := metricValue(t, reader, "pier.discovery.watch.errors")
		v, _ := metricValue(t, reader, "pier.discovery.staleness")
		return n >= 1 && v > 0
	})
	if n, _ := metricValue(t, reader, "pier.discovery.instances"); n != 2 {
		t.Errorf("pier.discovery.instances = %v while DNS fails, want the last-known-good 2", n)
	}

	_ = r.Close()
	for _, name := range []string{"pier.discovery.instances", "pier.discovery.staleness"} {
		if v, ok := metricValue(t, reader, name); ok {
			t.Errorf("%s = %v after Close, want its callback unregistered", name, v)
		}
	}
}
