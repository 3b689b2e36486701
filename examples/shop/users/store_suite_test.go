package users_test

import (
	"testing"

	"github.com/pier-go/pier/examples/shop/internal/pgtest"
	"github.com/pier-go/pier/examples/shop/users"
	"github.com/pier-go/pier/examples/shop/users/storetest"
)

func opener[S interface {
	users.Store
	Close() error
}](open func(t *testing.T) (S, error)) storetest.Opener {
	return func(t *testing.T) users.Store {
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
		return opener(func(t *testing.T) (*users.SQLiteStore, error) { return users.OpenSQLite(t.Context(), dir) })
	})
}

func TestPostgresStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		url := pgtest.NewDatabase(t)
		return opener(func(t *testing.T) (users.Database, error) { return users.Open(t.Context(), url) })
	})
}
