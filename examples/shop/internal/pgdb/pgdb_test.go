package pgdb_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/examples/shop/internal/pgdb"
	"github.com/pier-go/pier/examples/shop/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var migrations = []string{
	`CREATE TABLE things (id TEXT PRIMARY KEY)`,
	`ALTER TABLE things ADD COLUMN n INTEGER NOT NULL DEFAULT 0`,
}

// TestConcurrentStartsMigrateOnce: eight processes starting at once on one
// empty database all open it, and each migration runs once (a second run of
// CREATE TABLE or ADD COLUMN would fail).
func TestConcurrentStartsMigrateOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const n = 8
	errs := make([]error, n)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			pool, err := pgdb.Open(t.Context(), url, "svc", migrations)
			if err == nil {
				pool.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	pool, err := pgdb.Open(t.Context(), url, "svc", migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var versions, max int
	if err := pool.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&versions, &max); err != nil {
		t.Fatal(err)
	}
	if versions != 2 || max != 2 {
		t.Fatalf("schema_migrations holds %d versions up to %d, want 2 and 2", versions, max)
	}
	// The tables are in the service's schema, found through search_path.
	if _, err := pool.Exec(t.Context(), `INSERT INTO svc.things (id, n) VALUES ('a', 1)`); err != nil {
		t.Fatal(err)
	}
	var got int
	if err := pool.QueryRow(t.Context(), `SELECT n FROM things WHERE id = 'a'`).Scan(&got); err != nil || got != 1 {
		t.Fatalf("read through search_path: %d, %v", got, err)
	}
	// Another schema on the same database is another service's: empty.
	other, err := pgdb.Open(t.Context(), url, "other", migrations[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.QueryRow(t.Context(), `SELECT count(*) FROM things`).Scan(&got); err != nil || got != 0 {
		t.Fatalf("other schema's table holds %d rows, %v; want 0", got, err)
	}
}

func TestOpenRefusals(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pool, err := pgdb.Open(t.Context(), url, "svc", migrations)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	if _, err := pgdb.Open(t.Context(), url, "svc", migrations[:1]); err == nil || !strings.Contains(err.Error(), "newer than this program") {
		t.Fatalf("an older program on a newer schema: %v", err)
	}
	if _, err := pgdb.Open(t.Context(), url, `svc"; DROP SCHEMA public; --`, nil); err == nil || !strings.Contains(err.Error(), "invalid schema name") {
		t.Fatalf("a schema name with SQL in it: %v", err)
	}
}

// TestUnreachableServerErrorKeepsPasswordSecret: the error names the server
// without its password.
func TestUnreachableServerErrorKeepsPasswordSecret(t *testing.T) {
	// Port 1 on loopback: nothing listens there; the connection is refused
	// at once.
	_, err := pgdb.Open(t.Context(), "postgres://shop:hunter2@127.0.0.1:1/shop?connect_timeout=5", "svc", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error = %v; want one naming 127.0.0.1:1 without the password", err)
	}
	_, err = pgdb.Open(t.Context(), "postgres://shop:hunter2@127.0.0.1:notaport/shop", "svc", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "invalid database URL") {
		t.Fatalf("error = %v; want an invalid URL without the password", err)
	}
}

func TestIsURL(t *testing.T) {
	for s, want := range map[string]bool{
		"postgres://h/db": true, "POSTGRESQL://h/db": true, "postgres:": false, "sqlite:/x": false, "/data": false, "": false,
	} {
		if got := pgdb.IsURL(s); got != want {
			t.Errorf("IsURL(%q) = %v, want %v", s, got, want)
		}
	}
}
