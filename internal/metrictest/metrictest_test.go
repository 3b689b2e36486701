package metrictest_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"

	"github.com/pier-go/pier/internal/metrictest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValue(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	c, err := mp.Meter("test").Int64Counter("hits")
	if err != nil {
		t.Fatal(err)
	}
	users := attribute.String("pier.service", "users")
	c.Add(context.Background(), 3, metric.WithAttributes(users))
	if v, ok := metrictest.Value(t, reader, "hits", users); !ok || v != 3 {
		t.Fatalf("Value = %v, %t; want 3", v, ok)
	}
	if _, ok := metrictest.Value(t, reader, "hits", attribute.String("pier.service", "orders")); ok {
		t.Fatal("found a point for attributes never recorded")
	}
	if _, ok := metrictest.Value(t, reader, "absent"); ok {
		t.Fatal("found a metric never recorded")
	}
}
