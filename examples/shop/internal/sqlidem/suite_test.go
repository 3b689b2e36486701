package sqlidem_test

import (
	"testing"
	"time"

	"github.com/pier-go/pier/examples/shop/internal/idemtest"
	"github.com/pier-go/pier/examples/shop/internal/sqlidem"
	"github.com/pier-go/pier/examples/shop/internal/sqlitedb"
	"github.com/pier-go/pier/idempotency"
)

func TestStoreSuite(t *testing.T) {
	idemtest.Run(t, func(t *testing.T) idemtest.Opener {
		dir := t.TempDir()
		return func(t *testing.T, now func() time.Time) idempotency.Store {
			t.Helper()
			db, err := sqlitedb.Open(t.Context(), dir, "keys.db", []string{sqlidem.Schema})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			s, err := sqlidem.NewWithClock(db, idemtest.Retention, now)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
