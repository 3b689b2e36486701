package orders_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/examples/shop/internal/pgtest"
	"github.com/pier-go/pier/examples/shop/orders"
	"github.com/pier-go/pier/examples/shop/orders/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func opener[S interface {
	orders.Store
	Close() error
}](open func(t *testing.T) (S, error)) storetest.Opener {
	return func(t *testing.T) orders.Store {
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
		return opener(func(t *testing.T) (*orders.SQLiteStore, error) { return orders.OpenSQLite(t.Context(), dir) })
	})
}

func TestPostgresStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		url := pgtest.NewDatabase(t)
		return opener(func(t *testing.T) (*orders.PostgresStore, error) { return orders.OpenPostgres(t.Context(), url) })
	})
}
