package products_test

import (
	"testing"

	"github.com/pier-go/pier/examples/shop/internal/pgtest"
	"github.com/pier-go/pier/examples/shop/products"
	"github.com/pier-go/pier/examples/shop/products/storetest"
)

// opener opens stores with open on one database, closing each when its test
// ends.
func opener[S interface {
	products.Store
	Close() error
}](open func(t *testing.T) (S, error)) storetest.Opener {
	return func(t *testing.T) products.Store {
		t.Helper()
		s, err := open(t)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

func TestSQLiteStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return opener(func(t *testing.T) (*products.SQLiteStore, error) { return products.OpenSQLite(t.Context(), dir) })
	})
}

func TestPostgresStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		url := pgtest.NewDatabase(t)
		return opener(func(t *testing.T) (*products.PostgresStore, error) { return products.OpenPostgres(t.Context(), url) })
	})
}

// TestOpenChoosesByURL: Open gives the SQLite store for a directory or a
// sqlite: URL and the PostgreSQL one for a postgres:// URL, and both keep
// what was written through another handle.
func TestOpenChoosesByURL(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, url string
		want      any
	}{
		{"directory", dir, &products.SQLiteStore{}},
		{"sqlite URL", "sqlite:" + dir, &products.SQLiteStore{}},
		{"sqlite file", "sqlite:" + dir + "/other.db", &products.SQLiteStore{}},
		{"postgres URL", pgtest.NewDatabase(t), &products.PostgresStore{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := func() products.Database {
				s, err := products.Open(t.Context(), tc.url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			s := open()
			switch tc.want.(type) {
			case *products.SQLiteStore:
				if _, ok := s.(*products.SQLiteStore); !ok {
					t.Fatalf("Open(%q) = %T, want SQLite", tc.url, s)
				}
			case *products.PostgresStore:
				if _, ok := s.(*products.PostgresStore); !ok {
					t.Fatalf("Open(%q) = %T, want PostgreSQL", tc.url, s)
				}
			}
			id := "p_" + tc.name
			if err := s.Create(t.Context(), products.Product{ID: id, Name: "x", PriceCents: 1, Stock: 1}); err != nil {
				t.Fatal(err)
			}
			if err := s.Ping(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, err := open().Get(t.Context(), id); err != nil {
				t.Fatalf("a second handle: %v", err)
			}
		})
	}
	if _, err := products.Open(t.Context(), "mysql://root@db/shop"); err == nil {
		t.Fatal("Open of a mysql:// URL succeeded")
	}
}
