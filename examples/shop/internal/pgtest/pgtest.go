package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables the package reads.
const (
	// EnvURL names the server: a postgres:// URL whose user may create
	// databases, usually to its maintenance database "postgres".
	EnvURL = "PIER_POSTGRES_URL"
	// EnvRequire, set to 1, turns a missing EnvURL into a failure.
	EnvRequire = "PIER_REQUIRE_POSTGRES"
)

// setupTimeout bounds creating and dropping a database, so that a server that
// accepts connections and then hangs fails the test rather than the run.
const setupTimeout = time.Minute

// ServerURL returns PIER_POSTGRES_URL. Without it, it fails tb when
// PIER_REQUIRE_POSTGRES=1, and skips it otherwise.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvURL)
	if u != "" {
		return u
	}
	if os.Getenv(EnvRequire) == "1" {
		tb.Fatalf("pgtest: %s=1 but %s is not set: make test starts a server with scripts/start-postgres.sh; did it fail?", EnvRequire, EnvURL)
	}
	tb.Skipf("pgtest: %s is not set (eval \"$(scripts/start-postgres.sh)\" starts a server; make test does it)", EnvURL)
	return ""
}

// NewDatabase creates an empty database with a random name on the server (see
// ServerURL) and returns its URL. The database is dropped, with any
// connection still open to it, when tb's test and its subtests end.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	server := ServerURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Fatalf("pgtest: %s: PostgreSQL unreachable: %v", EnvURL, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()

	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "pier_test_" + hex.EncodeToString(b[:])
	// The name is ours (letters, digits, underscores): no quoting needed.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() { drop(tb, server, name) })

	u, err := url.Parse(server)
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

func drop(tb testing.TB, server, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Errorf("pgtest: drop database %s: %v", name, err)
		return
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		tb.Errorf("pgtest: drop database %s: %v", name, err)
	}
}
