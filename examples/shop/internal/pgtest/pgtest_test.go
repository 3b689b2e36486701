package pgtest

import (
	"context"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func exists(t *testing.T, server, name string) bool {
	t.Helper()
	var n int
	if err := connect(t, server).QueryRow(t.Context(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestNewDatabaseIsFreshAndDropped: each call gives its own empty database,
// which is gone once the test that asked for it has ended, even with a
// connection left open to it.
func TestNewDatabaseIsFreshAndDropped(t *testing.T) {
	server := ServerURL(t)
	var names [2]string
	t.Run("create", func(t *testing.T) {
		a, b := NewDatabase(t), NewDatabase(t)
		ca, cb := connect(t, a), connect(t, b)
		if _, err := ca.Exec(t.Context(), `CREATE TABLE only_in_a (x int)`); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := cb.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("the second database sees the first's table: %d, %v", n, err)
		}
		for i, c := range []*pgx.Conn{ca, cb} {
			if err := c.QueryRow(t.Context(), `SELECT current_database()`).Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] || !exists(t, server, names[0]) || !exists(t, server, names[1]) {
			t.Fatalf("databases %q and %q", names[0], names[1])
		}
		// cb stays open until after the drop would have run, were cleanups
		// not last-in first-out: DROP ... WITH (FORCE) copes either way.
	})
	for _, name := range names {
		if exists(t, server, name) {
			t.Errorf("database %s still exists after its test", name)
		}
	}
}

// recorder is a testing.TB that records how ServerURL ended the test.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }
func (r *recorder) Skipf(string, ...any)  { r.skipped = true; runtime.Goexit() }
func (r *recorder) Cleanup(func())        {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) run(f func(testing.TB)) *recorder {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// TestMissingServerFailsWhenRequired: with PIER_REQUIRE_POSTGRES=1 a missing
// URL or an unreachable server fails the test; only with neither variable set
// is it skipped.
func TestMissingServerFailsWhenRequired(t *testing.T) {
	for _, tc := range []struct {
		name, url, require string
		fail, skip         bool
	}{
		{"no URL, required", "", "1", true, false},
		{"no URL, not required", "", "", false, true},
		{"unreachable, required", "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5", "1", true, false},
		{"unreachable, not required", "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5", "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvURL, tc.url)
			t.Setenv(EnvRequire, tc.require)
			r := (&recorder{TB: t}).run(func(tb testing.TB) { NewDatabase(tb) })
			if r.failed != tc.fail || r.skipped != tc.skip {
				t.Fatalf("failed %v, skipped %v; want %v, %v", r.failed, r.skipped, tc.fail, tc.skip)
			}
		})
	}
}
