package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/examples/shop/orders"
)

// Opener opens a store on one test's database. Every call is a new handle on
// the same database, as a second process would have; the handles close when
// t ends.
type Opener func(t *testing.T) orders.Store

// Run runs the suite as subtests of t, in parallel; newDB makes a fresh, empty
// database for each and returns how to open it.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, open Opener)
	}{
		{"CreateGetAndList", testCreateGetAndList},
		{"ListKeepsEachOrdersItems", testListItems},
		{"TransitionIsConditional", testTransitionIsConditional},
		{"ConcurrentTransitionsMoveOnce", testConcurrentTransitions},
		{"DeleteOnlyPending", testDeleteOnlyPending},
		{"StaleFindsOldPendingOrders", testStale},
		{"OwedStepsRecordedOnce", testOwed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newDB(t))
		})
	}
}

// created is a creation time both stores keep exactly (milliseconds).
var created = time.UnixMilli(1_800_000_000_123)

func order(id, user string) orders.Order {
	return orders.Order{ID: id, UserID: user, Status: orders.Pending, CreatedAt: created,
		Items: []orders.Item{{ProductID: "p_2", Quantity: 2}, {ProductID: "p_1", Quantity: 1}}}
}

func equal(t *testing.T, how string, got, want orders.Order) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("%s: created %v, want %v", how, got.CreatedAt, want.CreatedAt)
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %+v\nwant %+v", how, got, want)
	}
}

func testCreateGetAndList(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	// Ids sort in creation order, as the shop's do.
	for _, o := range []orders.Order{order("o_1", "u_a"), order("o_2", "u_b"), order("o_3", "u_a"), order("o_4", "u_a")} {
		if err := s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	again := open(t)
	got, err := again.Get(ctx, "o_3")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "Get", got, order("o_3", "u_a"))
	if _, err := again.Get(ctx, "o_none"); !errors.Is(err, orders.ErrNotFound) {
		t.Fatalf("Get of an unknown order: %v, want ErrNotFound", err)
	}
	list, err := again.List(ctx, "u_a", 2)
	if err != nil || len(list) != 2 || list[0].ID != "o_4" || list[1].ID != "o_3" {
		t.Fatalf("List(u_a, 2) = %+v, %v; want o_4, o_3", list, err)
	}
	equal(t, "listed", list[1], order("o_3", "u_a"))
	if list, err := again.List(ctx, "u_b", 10); err != nil || len(list) != 1 || list[0].ID != "o_2" {
		t.Fatalf("List(u_b) = %+v, %v", list, err)
	}
	if list, err := again.List(ctx, "u_c", 10); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("List of a user without orders = %#v, %v; want an empty, non-nil slice", list, err)
	}
}

// testListItems lists orders whose items differ, in number and order, so that
// a store reading the items of several orders at once must give each its own.
func testListItems(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	want := []orders.Order{order("o_1", "u_a"), order("o_2", "u_a"), order("o_3", "u_a")}
	want[0].Items = []orders.Item{{ProductID: "p_9", Quantity: 9}}
	want[1].Items = []orders.Item{}
	want[2].Items = []orders.Item{{ProductID: "p_3", Quantity: 3}, {ProductID: "p_1", Quantity: 1}, {ProductID: "p_2", Quantity: 2}}
	for _, o := range want {
		if err := s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	list, err := open(t).List(ctx, "u_a", 10)
	if err != nil || len(list) != len(want) {
		t.Fatalf("List(u_a) = %+v, %v; want 3 orders", list, err)
	}
	for i, got := range list {
		w := want[len(want)-1-i] // newest first
		equal(t, fmt.Sprintf("listed %s", w.ID), got, w)
	}
}

func testTransitionIsConditional(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	o := order("o_1", "u_a")
	if err := s.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	o.Status, o.TotalCents = orders.Confirmed, 650
	o.Items[0].PriceCents, o.Items[1].PriceCents = 200, 250
	if ok, err := s.Transition(ctx, orders.Pending, o); err != nil || !ok {
		t.Fatalf("pending -> confirmed: %v, %v", ok, err)
	}
	rejected := o
	rejected.Status, rejected.Reason = orders.Rejected, "late"
	if ok, err := s.Transition(ctx, orders.Pending, rejected); err != nil || ok {
		t.Fatalf("a second move out of pending: %v, %v; want false", ok, err)
	}
	got, err := open(t).Get(ctx, "o_1")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "after confirming", got, o)

	o.Status, o.Compensated = orders.Cancelled, true
	if ok, err := s.Transition(ctx, orders.Confirmed, o); err != nil || !ok {
		t.Fatalf("confirmed -> cancelled: %v, %v", ok, err)
	}
	if got, err = s.Get(ctx, "o_1"); err != nil {
		t.Fatal(err)
	}
	equal(t, "after cancelling", got, o)
	if ok, err := s.Transition(ctx, orders.Pending, orders.Order{ID: "o_none", Status: orders.Confirmed}); err != nil || ok {
		t.Fatalf("transition of an unknown order: %v, %v; want false", ok, err)
	}
}

// testConcurrentTransitions: ten instances moving one order out of pending
// at once, to confirmed or rejected: one of them does, and the order holds
// what that one wrote.
func testConcurrentTransitions(t *testing.T, open Opener) {
	handles := []orders.Store{open(t), open(t)}
	if err := handles[0].Create(t.Context(), order("o_1", "u_a")); err != nil {
		t.Fatal(err)
	}
	const n = 10
	moved := make([]bool, n)
	errs := make([]error, n)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			o := order("o_1", "u_a")
			o.Status, o.Reason, o.TotalCents = orders.Confirmed, "", int64(i)
			if i%2 == 1 {
				o.Status, o.Reason = orders.Rejected, fmt.Sprintf("instance %d", i)
			}
			<-start
			moved[i], errs[i] = handles[i%2].Transition(t.Context(), orders.Pending, o)
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	winner := -1
	for i, m := range moved {
		if m {
			if winner >= 0 {
				t.Fatalf("instances %d and %d both moved the order", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no instance moved the order")
	}
	got, err := handles[1].Get(t.Context(), "o_1")
	if err != nil || got.TotalCents != int64(winner) {
		t.Fatalf("order = %+v, %v; want the one instance %d wrote", got, err, winner)
	}
}

func testDeleteOnlyPending(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	for _, id := range []string{"o_1", "o_2"} {
		if err := s.Create(ctx, order(id, "u_a")); err != nil {
			t.Fatal(err)
		}
	}
	confirmed := order("o_2", "u_a")
	confirmed.Status = orders.Confirmed
	if ok, err := s.Transition(ctx, orders.Pending, confirmed); err != nil || !ok {
		t.Fatalf("confirm: %v, %v", ok, err)
	}
	for _, id := range []string{"o_1", "o_2", "o_none"} {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("Delete(%s): %v", id, err)
		}
	}
	if _, err := s.Get(ctx, "o_1"); !errors.Is(err, orders.ErrNotFound) {
		t.Fatalf("the pending order is still there: %v", err)
	}
	if got, err := s.Get(ctx, "o_2"); err != nil || got.Status != orders.Confirmed || len(got.Items) != 2 {
		t.Fatalf("the confirmed order = %+v, %v; want it kept, with its items", got, err)
	}
	// The deleted order's items went with it: a new order may take its id.
	if err := s.Create(ctx, order("o_1", "u_b")); err != nil {
		t.Fatalf("recreate a deleted id: %v", err)
	}
	if got, err := s.Get(ctx, "o_1"); err != nil || len(got.Items) != 2 {
		t.Fatalf("recreated order = %+v, %v", got, err)
	}
}

func testStale(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	at := func(id string, d time.Duration, status string) {
		t.Helper()
		o := order(id, "u_a")
		o.CreatedAt = created.Add(d)
		if err := s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		if status != orders.Pending {
			o.Status = status
			if ok, err := s.Transition(ctx, orders.Pending, o); err != nil || !ok {
				t.Fatalf("transition: %v, %v", ok, err)
			}
		}
	}
	at("o_1", 2*time.Second, orders.Pending)
	at("o_2", 0, orders.Pending)
	at("o_3", -time.Second, orders.Confirmed)
	at("o_4", time.Second, orders.Pending)
	at("o_5", time.Hour, orders.Pending)
	ids := func(os []orders.Order) []string {
		var out []string
		for _, o := range os {
			out = append(out, o.ID)
		}
		return out
	}
	got, err := open(t).Stale(ctx, created.Add(3*time.Second), 10)
	if err != nil || !slices.Equal(ids(got), []string{"o_2", "o_4", "o_1"}) {
		t.Fatalf("Stale = %v, %v; want o_2, o_4, o_1: pending, older than the bound, oldest first", ids(got), err)
	}
	if len(got[0].Items) != 2 {
		t.Fatalf("stale order without its items: %+v", got[0])
	}
	if got, err := s.Stale(ctx, created.Add(3*time.Second), 1); err != nil || !slices.Equal(ids(got), []string{"o_2"}) {
		t.Fatalf("Stale(limit 1) = %v, %v; want o_2", ids(got), err)
	}
	if got, err := s.Stale(ctx, created, 10); err != nil || len(got) != 0 {
		t.Fatalf("Stale before every pending order = %v, %v; want none", ids(got), err)
	}
}

func testOwed(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	refund := orders.Step{Kind: orders.StepRefund, Target: "o_1", OrderID: "o_1"}
	r1 := orders.Step{Kind: orders.StepRelease, Target: "o_1.p_1", OrderID: "o_1"}
	r2 := orders.Step{Kind: orders.StepRelease, Target: "o_1.p_2", OrderID: "o_1"}
	r3 := orders.Step{Kind: orders.StepRelease, Target: "o_2.p_1", OrderID: "o_2"}
	if err := s.Owe(ctx, []orders.Step{refund, r1, r2}); err != nil {
		t.Fatal(err)
	}
	again := open(t) // another instance owes some of the same steps
	if err := again.Owe(ctx, []orders.Step{r1, r3}); err != nil {
		t.Fatal(err)
	}
	sorted := func(steps []orders.Step) []orders.Step {
		slices.SortFunc(steps, func(a, b orders.Step) int {
			return strings.Compare(a.Kind+" "+a.Target, b.Kind+" "+b.Target)
		})
		return steps
	}
	got, err := again.Owed(ctx, 10)
	if want := sorted([]orders.Step{refund, r1, r2, r3}); err != nil || !slices.Equal(sorted(got), want) {
		t.Fatalf("Owed = %v, %v; want each step once: %v", got, err, want)
	}
	if got, err := s.Owed(ctx, 2); err != nil || len(got) != 2 {
		t.Fatalf("Owed(2) = %v, %v", got, err)
	}
	for _, st := range []orders.Step{r1, refund, {Kind: orders.StepRelease, Target: "never-owed"}} {
		if err := s.Paid(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := again.Owed(ctx, 10); err != nil || !slices.Equal(sorted(got), sorted([]orders.Step{r2, r3})) {
		t.Fatalf("Owed after paying two = %v, %v; want %v", got, err, []orders.Step{r2, r3})
	}
}
