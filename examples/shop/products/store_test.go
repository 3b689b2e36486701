package products

import (
	"testing"

	"go.uber.org/goleak"
)

// The store's tests are the suite in storetest, run on SQLite and PostgreSQL
// by store_suite_test.go.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
