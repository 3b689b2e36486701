package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/pier-go/pier/examples/shop/products"
)

// Opener opens a store on one test's database. Every call is a new handle on
// the same database, as a second process would have; the handles close when
// t ends.
type Opener func(t *testing.T) products.Store

// Run runs the suite as subtests of t, in parallel; newDB makes a fresh, empty
// database for each and returns how to open it.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, open Opener)
	}{
		{"CreateGetAndReopen", testCreateGetAndReopen},
		{"ListPagesInCreationOrder", testListPagesInCreationOrder},
		{"ReserveAndReleaseOncePerID", testReserveAndReleaseOncePerID},
		{"LateReserveAfterReleaseTakesNothing", testLateReserveAfterReleaseTakesNothing},
		{"ReserveRefusals", testReserveRefusals},
		{"ConcurrentReservesNeverGoBelowZero", testConcurrentReservesNeverGoBelowZero},
		{"ConcurrentReservesOfOneIDReserveOnce", testConcurrentReservesOfOneID},
		{"ConcurrentReleasesOfOneIDReleaseOnce", testConcurrentReleasesOfOneID},
		{"ReleaseRacingReserveLeavesStockWhole", testReleaseRacingReserve},
		{"RestockAddsToStock", testRestock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newDB(t))
		})
	}
}

func create(t *testing.T, s products.Store, id string, stock int64) string {
	t.Helper()
	if err := s.Create(t.Context(), products.Product{ID: id, Name: "Product " + id, PriceCents: 250, Stock: stock}); err != nil {
		t.Fatal(err)
	}
	return id
}

func stockOf(t *testing.T, s products.Store, id string) int64 {
	t.Helper()
	p, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p.Stock
}

// together runs f(0) ... f(n-1) on n goroutines released at once, and waits.
func together(n int, f func(i int)) {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func testCreateGetAndReopen(t *testing.T, open Opener) {
	s := open(t)
	want := products.Product{ID: "p_1", Name: "Mug", PriceCents: 1250, Stock: 3}
	if err := s.Create(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), products.Product{ID: "p_1", Name: "Again", PriceCents: 1}); err == nil {
		t.Fatal("a second product with one id was created")
	}
	// Another handle, as another process or a restart, reads the same.
	got, err := open(t).Get(t.Context(), "p_1")
	if err != nil || got != want {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.Get(t.Context(), "p_none"); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v, want ErrNotFound", err)
	}
}

func testListPagesInCreationOrder(t *testing.T, open Opener) {
	s := open(t)
	if got, err := s.List(t.Context(), "", 10); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("List of none = %#v, %v; want an empty, non-nil slice", got, err)
	}
	for _, id := range []string{"p_1", "p_2", "p_3", "p_4"} {
		create(t, s, id, 1)
	}
	first, err := s.List(t.Context(), "", 2)
	if err != nil || len(first) != 2 || first[0].ID != "p_1" || first[1].ID != "p_2" {
		t.Fatalf("first page = %v, %v", first, err)
	}
	rest, err := s.List(t.Context(), first[1].ID, 10)
	if err != nil || len(rest) != 2 || rest[0].ID != "p_3" || rest[1].ID != "p_4" {
		t.Fatalf("second page = %v, %v", rest, err)
	}
	if rest[0].Name != "Product p_3" || rest[0].PriceCents != 250 || rest[0].Stock != 1 {
		t.Fatalf("listed product = %+v", rest[0])
	}
}

// testReserveAndReleaseOncePerID: a repeated reserve or release with the
// same id changes nothing.
func testReserveAndReleaseOncePerID(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	p := create(t, s, "p_1", 10)
	r := products.Reservation{ID: "o_1.p_1", ProductID: p, Quantity: 3}
	for i, wantCreated := range []bool{true, false, false} {
		got, created, err := s.Reserve(ctx, r)
		if err != nil || created != wantCreated || got.PriceCents != 250 || got.State != products.Reserved ||
			got.ID != r.ID || got.ProductID != p || got.Quantity != 3 {
			t.Fatalf("reserve %d = %+v, created %v, %v", i+1, got, created, err)
		}
	}
	if n := stockOf(t, s, p); n != 7 {
		t.Fatalf("stock after reserving thrice with one id = %d, want 7", n)
	}
	for i := range 3 {
		got, err := s.Release(ctx, r.ID)
		if err != nil || got.State != products.Released || got.ProductID != p || got.Quantity != 3 {
			t.Fatalf("release %d = %+v, %v", i+1, got, err)
		}
	}
	if n := stockOf(t, s, p); n != 10 {
		t.Fatalf("stock after releasing thrice = %d, want 10", n)
	}
	if _, _, err := s.Reserve(ctx, r); !errors.Is(err, products.ErrReleased) {
		t.Fatalf("reserve after release: %v, want ErrReleased", err)
	}
	if n := stockOf(t, s, p); n != 10 {
		t.Fatalf("stock after a refused reserve = %d, want 10", n)
	}
}

// testLateReserveAfterReleaseTakesNothing: a release that overtakes its
// reserve (the saga gave up waiting) makes the late reserve take nothing.
func testLateReserveAfterReleaseTakesNothing(t *testing.T, open Opener) {
	s := open(t)
	p := create(t, s, "p_1", 5)
	if got, err := s.Release(t.Context(), "o_2.p_1"); err != nil || got.State != products.Released {
		t.Fatalf("release of an unknown id = %+v, %v", got, err)
	}
	if _, _, err := s.Reserve(t.Context(), products.Reservation{ID: "o_2.p_1", ProductID: p, Quantity: 1}); !errors.Is(err, products.ErrReleased) {
		t.Fatalf("late reserve: %v, want ErrReleased", err)
	}
	if n := stockOf(t, s, p); n != 5 {
		t.Fatalf("stock = %d, want 5", n)
	}
}

func testReserveRefusals(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	p := create(t, s, "p_1", 2)
	var short *products.InsufficientError
	if _, _, err := s.Reserve(ctx, products.Reservation{ID: "a", ProductID: p, Quantity: 3}); !errors.As(err, &short) ||
		short.Available != 2 || short.ProductID != p {
		t.Fatalf("reserve 3 of 2: %v", err)
	}
	if _, _, err := s.Reserve(ctx, products.Reservation{ID: "b", ProductID: "p_none", Quantity: 1}); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("reserve an unknown product: %v", err)
	}
	// A refused reservation leaves its id free.
	if _, created, err := s.Reserve(ctx, products.Reservation{ID: "a", ProductID: p, Quantity: 1}); err != nil || !created {
		t.Fatalf("reserve with the id of a refused reservation: %v, %v", created, err)
	}
	if _, _, err := s.Reserve(ctx, products.Reservation{ID: "a", ProductID: p, Quantity: 2}); !errors.Is(err, products.ErrMismatch) {
		t.Fatalf("reuse an id for another quantity: %v", err)
	}
	create(t, s, "p_2", 5)
	if _, _, err := s.Reserve(ctx, products.Reservation{ID: "a", ProductID: "p_2", Quantity: 1}); !errors.Is(err, products.ErrMismatch) {
		t.Fatalf("reuse an id for another product: %v", err)
	}
	if n := stockOf(t, s, p); n != 1 {
		t.Fatalf("stock = %d, want 1", n)
	}
	if n := stockOf(t, s, "p_2"); n != 5 {
		t.Fatalf("stock of p_2 = %d, want 5", n)
	}
}

// testConcurrentReservesNeverGoBelowZero: 50 one-unit reservations at once,
// from two handles on the database, against a stock of 10 take exactly 10.
func testConcurrentReservesNeverGoBelowZero(t *testing.T, open Opener) {
	handles := []products.Store{open(t), open(t)}
	p := create(t, handles[0], "p_1", 10)
	const n = 50
	errs := make([]error, n)
	together(n, func(i int) {
		_, _, errs[i] = handles[i%2].Reserve(t.Context(), products.Reservation{ID: fmt.Sprintf("r%d", i), ProductID: p, Quantity: 1})
	})
	ok := 0
	for _, err := range errs {
		var short *products.InsufficientError
		switch {
		case err == nil:
			ok++
		case !errors.As(err, &short):
			t.Fatalf("reserve: %v", err)
		}
	}
	if got := stockOf(t, handles[1], p); ok != 10 || got != 0 {
		t.Fatalf("%d reservations succeeded, stock %d; want 10 and 0", ok, got)
	}
}

// testConcurrentReservesOfOneID: ten reserves of one id at once, from two
// handles, make one reservation.
func testConcurrentReservesOfOneID(t *testing.T, open Opener) {
	handles := []products.Store{open(t), open(t)}
	p := create(t, handles[0], "p_1", 10)
	const n = 10
	var (
		mu      sync.Mutex
		created int
		errs    []error
	)
	together(n, func(i int) {
		got, c, err := handles[i%2].Reserve(t.Context(), products.Reservation{ID: "o_1.p_1", ProductID: p, Quantity: 2})
		mu.Lock()
		defer mu.Unlock()
		if err == nil && (got.Quantity != 2 || got.State != products.Reserved || got.PriceCents != 250) {
			err = fmt.Errorf("reservation %+v", got)
		}
		if err != nil {
			errs = append(errs, err)
		}
		if c {
			created++
		}
	})
	if len(errs) > 0 {
		t.Fatalf("reserve: %v", errors.Join(errs...))
	}
	if got := stockOf(t, handles[1], p); created != 1 || got != 8 {
		t.Fatalf("%d reserves created the reservation, stock %d; want 1 and 8", created, got)
	}
}

// testConcurrentReleasesOfOneID: ten releases of one reservation at once put
// its stock back once.
func testConcurrentReleasesOfOneID(t *testing.T, open Opener) {
	handles := []products.Store{open(t), open(t)}
	p := create(t, handles[0], "p_1", 10)
	if _, _, err := handles[0].Reserve(t.Context(), products.Reservation{ID: "o_1.p_1", ProductID: p, Quantity: 4}); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 10)
	together(len(errs), func(i int) {
		var r products.Reservation
		r, errs[i] = handles[i%2].Release(t.Context(), "o_1.p_1")
		if errs[i] == nil && r.State != products.Released {
			errs[i] = fmt.Errorf("release = %+v", r)
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, handles[1], p); got != 10 {
		t.Fatalf("stock after ten releases of a reservation of 4 = %d, want 10", got)
	}
}

// testReleaseRacingReserve: a release and a reserve of one id at once, many
// times over: whichever wins, the stock ends whole (reserved and put back, or
// never taken).
func testReleaseRacingReserve(t *testing.T, open Opener) {
	handles := []products.Store{open(t), open(t)}
	p := create(t, handles[0], "p_1", 100)
	for round := range 20 {
		id := fmt.Sprintf("o_%d.p_1", round)
		var reserveErr, releaseErr error
		together(2, func(i int) {
			if i == 0 {
				_, _, reserveErr = handles[0].Reserve(t.Context(), products.Reservation{ID: id, ProductID: p, Quantity: 3})
			} else {
				_, releaseErr = handles[1].Release(t.Context(), id)
			}
		})
		if releaseErr != nil || (reserveErr != nil && !errors.Is(reserveErr, products.ErrReleased)) {
			t.Fatalf("round %d: reserve %v, release %v", round, reserveErr, releaseErr)
		}
		if got := stockOf(t, handles[0], p); got != 100 {
			t.Fatalf("round %d: stock %d, want 100 (reserve: %v)", round, got, reserveErr)
		}
	}
}

func testRestock(t *testing.T, open Opener) {
	s := open(t)
	p := create(t, s, "p_restock", 2)
	got, err := s.Restock(t.Context(), p, 5)
	if err != nil || got.Stock != 7 || stockOf(t, s, p) != 7 {
		t.Fatalf("restock = %+v, %v; want stock 7", got, err)
	}
	if _, err := s.Restock(t.Context(), "p_none", 1); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("restock an unknown product: %v, want ErrNotFound", err)
	}
}
