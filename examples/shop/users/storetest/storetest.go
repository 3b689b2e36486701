package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/examples/shop/users"
)

// Opener opens a store on one test's database. Every call is a new handle on
// the same database, as a second process would have; the handles close when
// t ends.
type Opener func(t *testing.T) users.Store

// Run runs the suite as subtests of t, in parallel; newDB makes a fresh, empty
// database for each and returns how to open it.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, open Opener)
	}{
		{"CreateAndRead", testCreateAndRead},
		{"EmailTakenIgnoringCase", testEmailTakenIgnoringCase},
		{"ConcurrentRegistrationsOfOneEmail", testConcurrentRegistrations},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newDB(t))
		})
	}
}

// created is a creation time both stores keep exactly (milliseconds).
var created = time.UnixMilli(1_800_000_000_123)

func testCreateAndRead(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	in := users.User{ID: "u_1", Email: "Alice@Example.com", Name: "Alice", PasswordHash: "$argon2id$v=19$x", Admin: true, CreatedAt: created}
	if err := s.Create(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, users.User{ID: "u_2", Email: "bob@example.com", Name: "Bob", PasswordHash: "h", CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	want := in
	want.Email = "alice@example.com"
	check := func(how string, got users.User, err error) {
		t.Helper()
		if err != nil || got.ID != want.ID || got.Email != want.Email || got.Name != want.Name ||
			got.PasswordHash != want.PasswordHash || got.Admin != want.Admin || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("%s = %+v, %v; want %+v", how, got, err, want)
		}
	}
	again := open(t) // another process, or after a restart
	for _, s := range []users.Store{s, again} {
		got, err := s.ByEmail(ctx, "ALICE@example.COM")
		check("ByEmail", got, err)
		got, err = s.ByID(ctx, "u_1")
		check("ByID", got, err)
	}
	if bob, err := again.ByID(ctx, "u_2"); err != nil || bob.Admin || bob.Email != "bob@example.com" {
		t.Fatalf("ByID(u_2) = %+v, %v", bob, err)
	}
	if _, err := s.ByEmail(ctx, "carol@example.com"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("ByEmail of an unknown address: %v, want ErrNotFound", err)
	}
	if _, err := s.ByID(ctx, "u_none"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("ByID of an unknown id: %v, want ErrNotFound", err)
	}
}

func testEmailTakenIgnoringCase(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	if err := s.Create(ctx, users.User{ID: "u_1", Email: "alice@example.com", Name: "A", PasswordHash: "h", CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	err := s.Create(ctx, users.User{ID: "u_2", Email: "ALICE@example.com", Name: "B", PasswordHash: "h", CreatedAt: created})
	if !errors.Is(err, users.ErrEmailTaken) {
		t.Fatalf("second registration of one address: %v, want ErrEmailTaken", err)
	}
	if _, err := s.ByID(ctx, "u_2"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("the refused user was kept: %v", err)
	}
}

// testConcurrentRegistrations: ten registrations of one address at once,
// from two handles, make one user.
func testConcurrentRegistrations(t *testing.T, open Opener) {
	handles := []users.Store{open(t), open(t)}
	const n = 10
	errs := make([]error, n)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = handles[i%2].Create(t.Context(), users.User{ID: fmt.Sprintf("u_%d", i), Email: "same@example.com",
				Name: "Same", PasswordHash: "h", CreatedAt: created})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, users.ErrEmailTaken):
			t.Fatalf("create: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations of one address succeeded, want 1", ok)
	}
}
