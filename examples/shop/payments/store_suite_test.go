package payments_test

import (
	"testing"

	"github.com/pier-go/pier/examples/shop/internal/pgtest"
	"github.com/pier-go/pier/examples/shop/payments"
	"github.com/pier-go/pier/examples/shop/payments/storetest"
)

func opener[S interface {
	payments.Store
	Close() error
}](open func(t *testing.T) (S, error)) storetest.Opener {
	return func(t *testing.T) payments.Store {
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
		return opener(func(t *testing.T) (*payments.SQLiteStore, error) { return payments.OpenSQLite(t.Context(), dir) })
	})
}

func TestPostgresStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		url := pgtest.NewDatabase(t)
		return opener(func(t *testing.T) (*payments.PostgresStore, error) { return payments.OpenPostgres(t.Context(), url) })
	})
}
