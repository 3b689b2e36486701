// Package metrictest reads metrics back from an OpenTelemetry ManualReader in
// tests: the one helper the packages that emit metrics share.
package metrictest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Value collects r and returns the value of the point of the metric name whose
// attributes are exactly attrs, and whether there is one. It reads int64 sums
// and int64 or float64 gauges, and fails tb on a metric of any other kind.
func Value(tb testing.TB, r *sdkmetric.ManualReader, name string, attrs ...attribute.KeyValue) (float64, bool) {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		tb.Fatal(err)
	}
	want := attribute.NewSet(attrs...)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if v, ok := find(d.DataPoints, &want); ok {
					return float64(v), true
				}
			case metricdata.Gauge[int64]:
				if v, ok := find(d.DataPoints, &want); ok {
					return float64(v), true
				}
			case metricdata.Gauge[float64]:
				if v, ok := find(d.DataPoints, &want); ok {
					return v, true
				}
			default:
				tb.Fatalf("%s: unexpected data %T", name, m.Data)
			}
		}
	}
	return 0, false
}

func find[N int64 | float64](points []metricdata.DataPoint[N], want *attribute.Set) (N, bool) {
	for _, p := range points {
		if p.Attributes.Equals(want) {
			return p.Value, true
		}
	}
	return 0, false
}
