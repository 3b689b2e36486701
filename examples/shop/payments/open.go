package payments

import (
	"context"
	"fmt"

	"github.com/pier-go/pier/examples/shop/internal/sqlidem"
	"github.com/pier-go/pier/examples/shop/internal/sqlitedb"
	"github.com/pier-go/pier/examples/shop/internal/storeurl"
	"github.com/pier-go/pier/idempotency"
)

// Database is a Store with its database's lifecycle: what Open returns.
// SQLiteStore and PostgresStore implement it.
type Database interface {
	Store
	// Ping checks the database, for a readiness check.
	Ping(ctx context.Context) error
	// Close closes the database.
	Close() error
	// IdempotencyStore returns the store of the service's idempotency keys,
	// in the same database. Call it once per service: each call of the
	// SQLite store's makes a new one.
	IdempotencyStore() (idempotency.Store, error)
}

var (
	_ Database = (*SQLiteStore)(nil)
	_ Database = (*PostgresStore)(nil)
)

// Open opens the store that url names, creating and migrating its tables:
// PostgreSQL for a postgres:// URL (OpenPostgres), SQLite for a sqlite: URL
// or a bare directory (the file payments.db in it, as OpenSQLite) or a path
// ending in .db (that file).
func Open(ctx context.Context, url string) (Database, error) {
	loc, err := storeurl.Parse(url, "payments.db")
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	if loc.Kind == storeurl.Postgres {
		return OpenPostgres(ctx, loc.URL)
	}
	db, err := sqlitedb.Open(ctx, loc.Dir, loc.File, migrations)
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	return &SQLiteStore{db: db}, nil
}

// IdempotencyStore returns a store of idempotency keys in the same database.
// Call it once per service: each call makes a new one.
func (s *SQLiteStore) IdempotencyStore() (idempotency.Store, error) { return sqlidem.New(s.db, 0) }
