package pgidem_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/examples/shop/internal/idemtest"
	"github.com/pier-go/pier/examples/shop/internal/pgdb"
	"github.com/pier-go/pier/examples/shop/internal/pgidem"
	"github.com/pier-go/pier/examples/shop/internal/pgtest"
	"github.com/pier-go/pier/idempotency"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ idempotency.Store = (*pgidem.Store)(nil)

func TestStoreSuite(t *testing.T) {
	idemtest.Run(t, func(t *testing.T) idemtest.Opener {
		url := pgtest.NewDatabase(t)
		return func(t *testing.T, now func() time.Time) idempotency.Store {
			t.Helper()
			pool, err := pgdb.Open(t.Context(), url, "keys", []string{pgidem.Schema})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			s, err := pgidem.NewWithClock(pool, idemtest.Retention, now)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
