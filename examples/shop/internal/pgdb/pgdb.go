package pgdb

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// IsURL reports whether dsn is a PostgreSQL URL: postgres:// or postgresql://.
func IsURL(dsn string) bool {
	return hasPrefixFold(dsn, "postgres://") || hasPrefixFold(dsn, "postgresql://")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects a pool to the database at url (a postgres:// URL; its
// pool_max_conns and other pgxpool parameters apply) with schema as every
// connection's search_path, checks that the server answers, and applies
// migrations: each entry is one schema version, run once, in order, inside a
// transaction, its number kept in the schema's schema_migrations table. Add
// migrations at the end; never edit one that has shipped.
//
// Several processes may start at once on one database: the migration runs
// under a transaction-scoped advisory lock named after the schema, so one
// applies each version and the others find it applied.
func Open(ctx context.Context, url, schema string, migrations []string) (*pgxpool.Pool, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("pgdb: invalid schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's parse errors may quote the URL, password and all.
		return nil, fmt.Errorf("pgdb: invalid database URL %s", Redact(url))
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgdb: %s: %w", Redact(url), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgdb: %s: %w", Redact(url), err)
	}
	if err := migrate(ctx, pool, schema, migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgdb: %s: schema %s: %w", Redact(url), schema, err)
	}
	return pool, nil
}

// Redact returns url with its password replaced by "xxxxx", for messages.
func Redact(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil || cfg.Password == "" {
		if err != nil {
			return "(unparsable URL)"
		}
		return url
	}
	return fmt.Sprintf("postgres://%s:xxxxx@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// lockKey is the advisory lock that serialises the migrations of schema:
// 64 bits of FNV-1a over a name no other program uses.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("pier-shop-migrate:" + schema))
	return int64(h.Sum64())
}

func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, migrations []string) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Held until the transaction ends, on this connection only: a process
		// that dies mid-migration drops it with its connection.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(schema)); err != nil {
			return err
		}
		// CREATE SCHEMA needs the CREATE right on the database even when the
		// schema exists: look first, so that a user given only its schema runs.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			// The name passed the pattern above: safe to quote this way.
			if _, err := tx.Exec(ctx, `CREATE SCHEMA "`+schema+`"`); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var version int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
			return err
		}
		if version > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this program (%d)", version, len(migrations))
		}
		for i := version; i < len(migrations); i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, i+1); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		return nil
	})
}

// IsUniqueViolation reports whether err is PostgreSQL's unique_violation
// (SQLSTATE 23505), from a UNIQUE or PRIMARY KEY constraint.
func IsUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}
