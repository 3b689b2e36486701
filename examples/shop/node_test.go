package shop

import (
	"context"
	"strings"
	"testing"

	"github.com/pier-go/pier/examples/shop/users"
	"github.com/pier-go/pier/service"
)

// TestNewNodeRefusesMissingParts checks that NewNode says what a service
// lacks instead of building a Service that fails on its first request.
func TestNewNodeRefusesMissingParts(t *testing.T) {
	cases := []struct {
		name string
		svc  string
		p    Parts
		want string
	}{
		{"unknown service", "inventory", Parts{}, `no service "inventory"`},
		{"users without a store", Users, Parts{OrdersSecret: "s"}, "users: no store"},
		{"users without the orders secret", Users, Parts{}, "users: no orders client secret"},
		{"orders without the orders secret", Orders, Parts{}, "orders: no orders client secret"},
		{"products without a store", Products, Parts{}, "products: no store"},
		{"payments without keys", Payments, Parts{}, "payments: no store"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := NewNode(c.svc, c.p, service.WithAddr("127.0.0.1:0"))
			if err == nil {
				_ = n.Close()
				t.Fatalf("NewNode(%s) = nil error", c.svc)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewNode(%s) = %v, want %q in it", c.svc, err, c.want)
			}
		})
	}
}

// TestOpenPartsGivesEachServiceItsStore opens every service's SQLite store
// in one directory and builds each service on it.
func TestOpenPartsGivesEachServiceItsStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, name := range ServiceNames() {
		p, db, err := OpenParts(ctx, name, "sqlite:"+dir)
		if err != nil {
			t.Fatalf("OpenParts(%s): %v", name, err)
		}
		if name != Gateway && (p.DB == nil || p.DB.Check(ctx) != nil) {
			t.Errorf("%s: no working database check", name)
		}
		if name == Users {
			if p.Key, err = users.LoadOrCreateKey(dir); err != nil {
				t.Fatal(err)
			}
		}
		p.OrdersSecret = "s"
		n, err := NewNode(name, p, service.WithAddr("127.0.0.1:0"))
		if err != nil {
			t.Errorf("NewNode(%s): %v", name, err)
		} else if err := n.Close(); err != nil {
			t.Errorf("%s: Close: %v", name, err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("%s: closing the database: %v", name, err)
		}
	}
	if _, _, err := OpenParts(ctx, "inventory", dir); err == nil {
		t.Error("OpenParts opened a store for an unknown service")
	}
}
