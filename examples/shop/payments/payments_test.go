package payments

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidCard(t *testing.T) {
	for card, want := range map[string]bool{
		CardCaptures: true, CardDeclined: true, CardInsufficientFunds: true,
		"4242424242424241": false, "4242": false, "4242-4242-4242-4242": false, "": false,
	} {
		if got := ValidCard(card); got != want {
			t.Errorf("ValidCard(%q) = %v, want %v", card, got, want)
		}
	}
}

// The store's tests are the suite in storetest, run on SQLite and PostgreSQL
// by store_suite_test.go.
