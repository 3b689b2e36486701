package users

import (
	"context"
	"fmt"

	"github.com/pier-go/pier/examples/shop/internal/sqlitedb"
	"github.com/pier-go/pier/examples/shop/internal/storeurl"
)

// Database is a Store with its database's lifecycle: what Open returns.
// SQLiteStore and PostgresStore implement it.
type Database interface {
	Store
	// Ping checks the database, for a readiness check.
	Ping(ctx context.Context) error
	// Close closes the database.
	Close() error
}

var (
	_ Database = (*SQLiteStore)(nil)
	_ Database = (*PostgresStore)(nil)
)

// Open opens the store that url names, creating and migrating its tables:
// PostgreSQL for a postgres:// URL (OpenPostgres), SQLite for a sqlite: URL
// or a bare directory (the file users.db in it, as OpenSQLite) or a path
// ending in .db (that file).
func Open(ctx context.Context, url string) (Database, error) {
	loc, err := storeurl.Parse(url, "users.db")
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	if loc.Kind == storeurl.Postgres {
		return OpenPostgres(ctx, loc.URL)
	}
	db, err := sqlitedb.Open(ctx, loc.Dir, loc.File, migrations)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return &SQLiteStore{db: db}, nil
}
