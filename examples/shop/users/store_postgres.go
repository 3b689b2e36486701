package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pier-go/pier/examples/shop/internal/pgdb"
)

var pgMigrations = []string{`
CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE,
	name          TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	admin         BOOLEAN NOT NULL DEFAULT false,
	created_at    TIMESTAMPTZ NOT NULL
);`}

// PostgresStore is the Store in PostgreSQL, in the schema "users". It is safe
// for concurrent use, also by several processes on one database: the UNIQUE
// constraint on email decides between two registrations of one address.
type PostgresStore struct{ pool *pgxpool.Pool }

// OpenPostgres connects to the database at url (postgres://...), creating
// and migrating the schema "users".
func OpenPostgres(ctx context.Context, url string) (*PostgresStore, error) {
	pool, err := pgdb.Open(ctx, url, "users", pgMigrations)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return &PostgresStore{pool: pool}, nil
}

// Close closes the pool.
func (s *PostgresStore) Close() error { s.pool.Close(); return nil }

// Ping checks the database, for a readiness check.
func (s *PostgresStore) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Create implements Store.
func (s *PostgresStore) Create(ctx context.Context, u User) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO users (id, email, name, password_hash, admin, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, u.ID, strings.ToLower(u.Email), u.Name, u.PasswordHash, u.Admin, u.CreatedAt)
	if pgdb.IsUniqueViolation(err) {
		return ErrEmailTaken
	}
	if err != nil {
		return fmt.Errorf("users: create: %w", err)
	}
	return nil
}

// ByEmail implements Store.
func (s *PostgresStore) ByEmail(ctx context.Context, email string) (User, error) {
	return s.one(ctx, `WHERE email = $1`, strings.ToLower(email))
}

// ByID implements Store.
func (s *PostgresStore) ByID(ctx context.Context, id string) (User, error) {
	return s.one(ctx, `WHERE id = $1`, id)
}

func (s *PostgresStore) one(ctx context.Context, where string, arg any) (User, error) {
	var (
		u       User
		created time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT id, email, name, password_hash, admin, created_at FROM users `+where, arg).
		Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.Admin, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("users: read: %w", err)
	}
	u.CreatedAt = created
	return u, nil
}
