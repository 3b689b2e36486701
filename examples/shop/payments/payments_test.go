package payments

import (
	"errors"
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

// TestRefundOnceAndVoidFirst: a captured charge is refunded once; a refund
// that comes before its charge voids the reference, and the late charge is
// refused.
func TestRefundOnceAndVoidFirst(t *testing.T) {
	s, err := OpenSQLite(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	c := Charge{ID: "ch_1", Reference: "o_1", AmountCents: 500, CardLast4: "4242", Status: Captured}
	if _, created, err := s.Create(ctx, c); err != nil || !created {
		t.Fatalf("charge: %v, %v", created, err)
	}
	if again, created, err := s.Create(ctx, Charge{ID: "ch_2", Reference: "o_1", AmountCents: 500, Status: Captured}); err != nil || created || again.ID != "ch_1" {
		t.Fatalf("second charge of one reference = %+v, %v, %v", again, created, err)
	}
	for i, want := range []bool{true, false, false} {
		got, changed, err := s.Refund(ctx, "o_1")
		if err != nil || changed != want || got.Status != Refunded {
			t.Fatalf("refund %d = %+v, changed %v, %v", i+1, got, changed, err)
		}
	}
	if got, _, err := s.Refund(ctx, "o_2"); err != nil || got.Status != Voided {
		t.Fatalf("refund before the charge = %+v, %v", got, err)
	}
	if _, _, err := s.Create(ctx, Charge{ID: "ch_3", Reference: "o_2", AmountCents: 1, Status: Captured}); !errors.Is(err, ErrVoided) {
		t.Fatalf("charge after a void: %v, want ErrVoided", err)
	}
}
