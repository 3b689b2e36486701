package discovery_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/discoverytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	discoverytest.Run(t, discoverytest.Suite{
		New:  func(*testing.T) discovery.Registry { return discovery.NewMemory() },
		IDs:  true,
		Tags: true,
		Meta: true,
	})
}

func TestMemoryMovesAnIDBetweenServices(t *testing.T) {
	t.Parallel()
	m := discovery.NewMemory()
	ctx := context.Background()
	in := discoverytest.Instance("users", 1)
	if err := m.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.Service = "orders"
	if err := m.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Resolve(ctx, "users"); !errors.Is(err, discovery.ErrNoInstances) {
		t.Fatalf("users still resolves after its instance moved: %v", err)
	}
	if got, err := m.Resolve(ctx, "orders"); err != nil || len(got) != 1 {
		t.Fatalf("orders = %v, %v", got, err)
	}
}

func TestMemoryKeepsItsOwnCopy(t *testing.T) {
	t.Parallel()
	m := discovery.NewMemory()
	in := discoverytest.Instance("users", 1)
	if err := m.Register(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	in.Tags[0] = "changed-after"
	in.Meta["version"] = "changed-after"
	got, _ := m.Resolve(context.Background(), "users")
	if got[0].Tags[0] == "changed-after" || got[0].Meta["version"] == "changed-after" {
		t.Fatalf("the caller's later changes reached the registry: %+v", got[0])
	}
}

func BenchmarkResolve(b *testing.B) {
	ctx := context.Background()
	m := discovery.NewMemory()
	for i := range 3 {
		if err := m.Register(ctx, discoverytest.Instance("users", i)); err != nil {
			b.Fatal(err)
		}
	}
	static, err := discovery.ParseStatic("users=127.0.0.1:1,127.0.0.1:2,127.0.0.1:3")
	if err != nil {
		b.Fatal(err)
	}
	for name, r := range map[string]discovery.Resolver{"memory": m, "static": static} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Resolve(ctx, "users"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Every core resolving at once, as a busy client does.
	b.Run("memory-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Resolve(ctx, "users"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
