package sqlidem

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/examples/shop/internal/sqlitedb"
	"github.com/pier-go/pier/idempotency"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, dir string) *Store {
	t.Helper()
	db, err := sqlitedb.Open(t.Context(), dir, "keys.db", []string{Schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := New(db, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var _ idempotency.Store = (*Store)(nil)

// TestClaimCompleteRelease walks the compare-and-set of every method.
func TestClaimCompleteRelease(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }

	first, err := s.Claim(ctx, "k", "fp1", time.Minute)
	if err != nil || first.Token == "" {
		t.Fatalf("first claim = %+v, %v", first, err)
	}
	held, err := s.Claim(ctx, "k", "fp2", time.Minute)
	if err != nil || held.Token != "" || held.Fingerprint != "fp1" || held.Response != nil || held.Changed == nil {
		t.Fatalf("claim of a held key = %+v, %v", held, err)
	}
	if err := s.Release(ctx, "k", "not-the-token"); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("release with another token: %v", err)
	}
	if err := s.Release(ctx, "k", first.Token); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Changed:
	default:
		t.Fatal("release did not close Changed")
	}

	second, err := s.Claim(ctx, "k", "fp1", time.Minute)
	if err != nil || second.Token == "" {
		t.Fatalf("claim after release = %+v, %v", second, err)
	}
	resp := &idempotency.Response{Status: 201, Header: http.Header{"Location": {"/orders/1"}}, Body: []byte(`{"id":"1"}`)}
	if err := s.Complete(ctx, "k", first.Token, resp); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("complete with a stale token: %v", err)
	}
	if err := s.Complete(ctx, "k", second.Token, resp); err != nil {
		t.Fatal(err)
	}
	done, err := s.Claim(ctx, "k", "fp1", time.Minute)
	if err != nil || done.Token != "" || done.Response == nil || done.Response.Status != 201 ||
		string(done.Response.Body) != `{"id":"1"}` || done.Response.Header.Get("Location") != "/orders/1" {
		t.Fatalf("claim of a completed key = %+v, %v", done, err)
	}

	// A claim whose lease ran out can be taken over.
	lapsing, _ := s.Claim(ctx, "k2", "fp", time.Second)
	now = now.Add(2 * time.Second)
	taken, err := s.Claim(ctx, "k2", "fp", time.Minute)
	if err != nil || taken.Token == "" || taken.Token == lapsing.Token {
		t.Fatalf("claim after the lease = %+v, %v", taken, err)
	}
	// And a completed key is dropped after the retention.
	now = now.Add(2 * time.Hour)
	again, err := s.Claim(ctx, "k", "fp3", time.Minute)
	if err != nil || again.Token == "" {
		t.Fatalf("claim after the retention = %+v, %v", again, err)
	}
}

// TestKeysSurviveReopen: a completed key is still completed in a new store
// on the same file, as after a restart.
func TestKeysSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	rec, err := s.Claim(t.Context(), "k", "fp", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(t.Context(), "k", rec.Token, &idempotency.Response{Status: 200, Header: http.Header{}, Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got, err := open(t, dir).Claim(t.Context(), "k", "fp", 0)
	if err != nil || got.Response == nil || string(got.Response.Body) != "x" {
		t.Fatalf("after reopening = %+v, %v", got, err)
	}
}
