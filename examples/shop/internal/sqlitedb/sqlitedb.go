package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver, pure Go
	sqlite3 "modernc.org/sqlite/lib"
)

// BusyTimeoutMS is how long a connection waits for another one's write lock
// before SQLITE_BUSY: long enough for a burst of concurrent orders on a slow
// machine, short enough that a stuck writer shows.
const BusyTimeoutMS = 10_000

// MaxOpenConns bounds the pool. SQLite has one writer at a time; more
// connections only make writers spin in the busy handler, while requests that
// wait for a free connection queue in database/sql, in order and bounded by
// their context.
const MaxOpenConns = 4

// Open opens (creating it if needed) the database file name in dir, which is
// created with mode 0700 when missing, and applies migrations: each entry is
// one schema version, run once, in order, inside a transaction, with the
// version kept in PRAGMA user_version. Add migrations at the end; never edit
// one that has shipped.
//
// Every connection runs in WAL mode (readers never block the writer), with
// foreign keys on, synchronous=NORMAL (durable across a process crash, which
// is what WAL needs) and the busy timeout above; transactions begin IMMEDIATE,
// so a transaction that will write takes the write lock at BEGIN rather than
// failing to upgrade a read lock halfway.
func Open(ctx context.Context, dir, name string, migrations []string) (*sql.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlitedb: data directory: %w", err)
	}
	path := filepath.Join(dir, name)
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeoutMS))
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(MaxOpenConns)
	db.SetMaxIdleConns(MaxOpenConns)
	if err := migrate(ctx, db, migrations); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlitedb: %s: %w", path, err), db.Close())
	}
	return db, nil
}

func migrate(ctx context.Context, db *sql.DB, migrations []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if version == len(migrations) {
		return nil
	}
	// PRAGMA takes no parameters; the value is an int.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return err
	}
	return tx.Commit()
}

// IsUniqueViolation reports whether err is SQLite's UNIQUE or PRIMARY KEY
// constraint failure.
func IsUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
