package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/examples/shop/payments"
)

// Opener opens a store on one test's database. Every call is a new handle on
// the same database, as a second process would have; the handles close when
// t ends.
type Opener func(t *testing.T) payments.Store

// Run runs the suite as subtests of t, in parallel; newDB makes a fresh, empty
// database for each and returns how to open it.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, open Opener)
	}{
		{"ChargeOncePerReference", testChargeOncePerReference},
		{"RefundOnceAndVoidFirst", testRefundOnceAndVoidFirst},
		{"ConcurrentChargesOfOneReference", testConcurrentCharges},
		{"ConcurrentRefundsRefundOnce", testConcurrentRefunds},
		{"RefundRacingChargeLeavesNothingCaptured", testRefundRacingCharge},
		{"ListPagesInIDOrderSinceATime", testList},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newDB(t))
		})
	}
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

func testChargeOncePerReference(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	c := payments.Charge{ID: "ch_1", Reference: "o_1", AmountCents: 500, CardLast4: "4242", Status: payments.Captured}
	if got, created, err := s.Create(ctx, c); err != nil || !created || got != c {
		t.Fatalf("charge = %+v, %v, %v", got, created, err)
	}
	d := payments.Charge{ID: "ch_2", Reference: "o_2", AmountCents: 700, CardLast4: "0002", Status: payments.Declined, DeclineCode: "card_declined"}
	if _, _, err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	again := open(t)
	if got, created, err := again.Create(ctx, payments.Charge{ID: "ch_3", Reference: "o_1", AmountCents: 1, Status: payments.Captured}); err != nil || created || got != c {
		t.Fatalf("second charge of one reference = %+v, %v, %v; want the first", got, created, err)
	}
	if got, err := again.ByID(ctx, "ch_2"); err != nil || got != d {
		t.Fatalf("ByID = %+v, %v; want %+v", got, err, d)
	}
	if _, err := again.ByID(ctx, "ch_3"); !errors.Is(err, payments.ErrNotFound) {
		t.Fatalf("ByID of the charge that was not made: %v, want ErrNotFound", err)
	}
}

// testRefundOnceAndVoidFirst: a captured charge is refunded once; a refund
// that comes before its charge voids the reference, and the late charge is
// refused.
func testRefundOnceAndVoidFirst(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	c := payments.Charge{ID: "ch_1", Reference: "o_1", AmountCents: 500, CardLast4: "4242", Status: payments.Captured}
	if _, created, err := s.Create(ctx, c); err != nil || !created {
		t.Fatalf("charge: %v, %v", created, err)
	}
	for i, want := range []bool{true, false, false} {
		got, changed, err := s.Refund(ctx, "o_1")
		if err != nil || changed != want || got.Status != payments.Refunded || got.ID != "ch_1" || got.AmountCents != 500 {
			t.Fatalf("refund %d = %+v, changed %v, %v", i+1, got, changed, err)
		}
	}
	if got, changed, err := s.Refund(ctx, "o_2"); err != nil || !changed || got.Status != payments.Voided {
		t.Fatalf("refund before the charge = %+v, %v, %v", got, changed, err)
	}
	if _, _, err := s.Create(ctx, payments.Charge{ID: "ch_3", Reference: "o_2", AmountCents: 1, Status: payments.Captured}); !errors.Is(err, payments.ErrVoided) {
		t.Fatalf("charge after a void: %v, want ErrVoided", err)
	}
	d := payments.Charge{ID: "ch_4", Reference: "o_4", AmountCents: 1, CardLast4: "0002", Status: payments.Declined, DeclineCode: "card_declined"}
	if _, _, err := s.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got, changed, err := s.Refund(ctx, "o_4"); err != nil || changed || got != d {
		t.Fatalf("refund of a declined charge = %+v, %v, %v; want it unchanged", got, changed, err)
	}
}

// testConcurrentCharges: ten charges of one reference at once, from two
// handles, make one charge, which every caller gets.
func testConcurrentCharges(t *testing.T, open Opener) {
	handles := []payments.Store{open(t), open(t)}
	const n = 10
	got := make([]payments.Charge, n)
	created := make([]bool, n)
	errs := make([]error, n)
	together(n, func(i int) {
		got[i], created[i], errs[i] = handles[i%2].Create(t.Context(), payments.Charge{ID: fmt.Sprintf("ch_%d", i),
			Reference: "o_1", AmountCents: 500, CardLast4: "4242", Status: payments.Captured})
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	n1 := 0
	for i := range n {
		if created[i] {
			n1++
		}
		if got[i].ID != got[0].ID {
			t.Fatalf("callers got charges %s and %s", got[0].ID, got[i].ID)
		}
	}
	if n1 != 1 {
		t.Fatalf("%d charges created, want 1", n1)
	}
}

// testConcurrentRefunds: ten refunds of one charge at once refund it once.
func testConcurrentRefunds(t *testing.T, open Opener) {
	handles := []payments.Store{open(t), open(t)}
	if _, _, err := handles[0].Create(t.Context(), payments.Charge{ID: "ch_1", Reference: "o_1", AmountCents: 500,
		CardLast4: "4242", Status: payments.Captured}); err != nil {
		t.Fatal(err)
	}
	const n = 10
	changed := make([]bool, n)
	errs := make([]error, n)
	together(n, func(i int) {
		var c payments.Charge
		c, changed[i], errs[i] = handles[i%2].Refund(t.Context(), "o_1")
		if errs[i] == nil && c.Status != payments.Refunded {
			errs[i] = fmt.Errorf("refund = %+v", c)
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	n1 := 0
	for _, c := range changed {
		if c {
			n1++
		}
	}
	if n1 != 1 {
		t.Fatalf("%d refunds changed the charge, want 1", n1)
	}
}

// testRefundRacingCharge: a charge and a refund of one reference at once,
// many times over: whichever wins, no captured charge is left behind (either
// the charge was made and refunded, or the reference was voided and the
// charge refused).
func testRefundRacingCharge(t *testing.T, open Opener) {
	handles := []payments.Store{open(t), open(t)}
	for round := range 20 {
		ref := fmt.Sprintf("o_%d", round)
		var (
			createErr, refundErr error
			refunded             payments.Charge
		)
		together(2, func(i int) {
			if i == 0 {
				_, _, createErr = handles[0].Create(t.Context(), payments.Charge{ID: "ch_" + ref, Reference: ref,
					AmountCents: 500, CardLast4: "4242", Status: payments.Captured})
			} else {
				refunded, _, refundErr = handles[1].Refund(t.Context(), ref)
			}
		})
		if refundErr != nil || (createErr != nil && !errors.Is(createErr, payments.ErrVoided)) {
			t.Fatalf("round %d: charge %v, refund %v", round, createErr, refundErr)
		}
		switch {
		case createErr == nil && refunded.Status != payments.Refunded:
			t.Fatalf("round %d: the charge was made, the refund answered %+v", round, refunded)
		case createErr != nil && refunded.Status != payments.Voided:
			t.Fatalf("round %d: the charge was refused, the refund answered %+v", round, refunded)
		}
		if c, err := handles[0].ByID(t.Context(), "ch_"+ref); err == nil && c.Status == payments.Captured {
			t.Fatalf("round %d: charge left captured after its refund", round)
		}
	}
}

// testList: List pages through the charges made since a time in id order,
// from any handle; a time after every charge lists none.
func testList(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	since := time.Now().Add(-time.Minute)
	var want []payments.Charge
	for _, id := range []string{"ch_c", "ch_a", "ch_b"} {
		c := payments.Charge{ID: id, Reference: "o" + id, AmountCents: 100, CardLast4: "4242", Status: payments.Captured}
		if _, _, err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	want[0], want[1], want[2] = want[1], want[2], want[0]
	other := open(t)
	var got []payments.Charge
	after := ""
	for range 4 {
		page, err := other.List(ctx, since, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %+v, want %+v", got, want)
	}
	if page, err := other.List(ctx, time.Now().Add(time.Hour), "", 10); err != nil || len(page) != 0 {
		t.Fatalf("List since an hour ahead = %+v, %v; want none", page, err)
	}
}
