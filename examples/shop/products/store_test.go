package products

import (
	"errors"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openStore(t *testing.T, stock int64) (*SQLiteStore, string) {
	t.Helper()
	s, err := OpenSQLite(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Create(t.Context(), Product{ID: "p_1", Name: "One", PriceCents: 250, Stock: stock}); err != nil {
		t.Fatal(err)
	}
	return s, "p_1"
}

func stockOf(t *testing.T, s *SQLiteStore, id string) int64 {
	t.Helper()
	p, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p.Stock
}

// TestReserveAndReleaseOncePerID: a repeated reserve or release with the same
// id changes nothing.
func TestReserveAndReleaseOncePerID(t *testing.T) {
	s, p := openStore(t, 10)
	ctx := t.Context()
	r := Reservation{ID: "o_1.p_1", ProductID: p, Quantity: 3}
	for i, wantCreated := range []bool{true, false, false} {
		got, created, err := s.Reserve(ctx, r)
		if err != nil || created != wantCreated || got.PriceCents != 250 || got.State != Reserved {
			t.Fatalf("reserve %d = %+v, created %v, %v", i+1, got, created, err)
		}
	}
	if n := stockOf(t, s, p); n != 7 {
		t.Fatalf("stock after reserving thrice with one id = %d, want 7", n)
	}
	for i := range 3 {
		if got, err := s.Release(ctx, r.ID); err != nil || got.State != Released {
			t.Fatalf("release %d = %+v, %v", i+1, got, err)
		}
	}
	if n := stockOf(t, s, p); n != 10 {
		t.Fatalf("stock after releasing thrice = %d, want 10", n)
	}
	if _, _, err := s.Reserve(ctx, r); !errors.Is(err, ErrReleased) {
		t.Fatalf("reserve after release: %v, want ErrReleased", err)
	}
}

// TestLateReserveAfterReleaseTakesNothing: a release that overtakes its
// reserve (the saga gave up waiting) makes the late reserve take nothing.
func TestLateReserveAfterReleaseTakesNothing(t *testing.T) {
	s, p := openStore(t, 5)
	if _, err := s.Release(t.Context(), "o_2.p_1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Reserve(t.Context(), Reservation{ID: "o_2.p_1", ProductID: p, Quantity: 1}); !errors.Is(err, ErrReleased) {
		t.Fatalf("late reserve: %v, want ErrReleased", err)
	}
	if n := stockOf(t, s, p); n != 5 {
		t.Fatalf("stock = %d, want 5", n)
	}
}

func TestReserveRefusals(t *testing.T) {
	s, p := openStore(t, 2)
	ctx := t.Context()
	var short *InsufficientError
	if _, _, err := s.Reserve(ctx, Reservation{ID: "a", ProductID: p, Quantity: 3}); !errors.As(err, &short) || short.Available != 2 {
		t.Fatalf("reserve 3 of 2: %v", err)
	}
	if _, _, err := s.Reserve(ctx, Reservation{ID: "b", ProductID: "p_none", Quantity: 1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reserve an unknown product: %v", err)
	}
	if _, _, err := s.Reserve(ctx, Reservation{ID: "c", ProductID: p, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Reserve(ctx, Reservation{ID: "c", ProductID: p, Quantity: 2}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("reuse an id for another quantity: %v", err)
	}
	if n := stockOf(t, s, p); n != 1 {
		t.Fatalf("stock = %d, want 1", n)
	}
}

// TestConcurrentReservesNeverGoBelowZero: 40 one-unit reservations at once
// against a stock of 7 take exactly 7.
func TestConcurrentReservesNeverGoBelowZero(t *testing.T) {
	s, p := openStore(t, 7)
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, errs[i] = s.Reserve(t.Context(), Reservation{ID: "r" + string(rune('A'+i)), ProductID: p, Quantity: 1})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		var short *InsufficientError
		switch {
		case err == nil:
			ok++
		case !errors.As(err, &short):
			t.Fatalf("reserve: %v", err)
		}
	}
	if ok != 7 || stockOf(t, s, p) != 0 {
		t.Fatalf("%d reservations succeeded, stock %d; want 7 and 0", ok, stockOf(t, s, p))
	}
}

func TestListPagesInCreationOrder(t *testing.T) {
	s, _ := openStore(t, 1)
	for _, id := range []string{"p_2", "p_3", "p_4"} {
		if err := s.Create(t.Context(), Product{ID: id, Name: id, PriceCents: 1}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.List(t.Context(), "", 2)
	if err != nil || len(first) != 2 || first[0].ID != "p_1" || first[1].ID != "p_2" {
		t.Fatalf("first page = %v, %v", first, err)
	}
	rest, err := s.List(t.Context(), first[1].ID, 10)
	if err != nil || len(rest) != 2 || rest[0].ID != "p_3" || rest[1].ID != "p_4" {
		t.Fatalf("second page = %v, %v", rest, err)
	}
}
