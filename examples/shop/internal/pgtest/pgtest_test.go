package pgtest

import (
	"context"
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
