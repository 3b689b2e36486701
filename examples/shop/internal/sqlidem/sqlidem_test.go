package sqlidem

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/idempotency"
)

// The store's tests are the suite in idemtest, which pgidem passes too, run
// by suite_test.go.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ idempotency.Store = (*Store)(nil)
