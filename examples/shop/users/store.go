package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pier-go/pier/examples/shop/internal/sqlitedb"
)

// User is a registered user as the store keeps it.
type User struct {
	ID           string
	Email        string // lower case
	Name         string
	PasswordHash string // PHC string, see HashPassword
	Admin        bool
	CreatedAt    time.Time
}

// Errors a Store returns for states the handlers answer.
var (
	ErrNotFound   = errors.New("users: not found")
	ErrEmailTaken = errors.New("users: email taken")
)

// Store keeps users. SQLiteStore (OpenSQLite) and PostgresStore
// (OpenPostgres) implement it. Implementations must be safe for concurrent
// use.
type Store interface {
	// Create adds u; ErrEmailTaken when its email is registered already.
	Create(ctx context.Context, u User) error
	// ByEmail and ByID return ErrNotFound for an unknown user.
	ByEmail(ctx context.Context, email string) (User, error)
	ByID(ctx context.Context, id string) (User, error)
}

var migrations = []string{`
CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE,
	name          TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	admin         INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL
);`}

// SQLiteStore is the Store in a SQLite file, users.db in the data directory.
type SQLiteStore struct{ db *sql.DB }

// OpenSQLite opens (creating and migrating it) dir/users.db.
func OpenSQLite(ctx context.Context, dir string) (*SQLiteStore, error) {
	db, err := sqlitedb.Open(ctx, dir, "users.db", migrations)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return &SQLiteStore{db: db}, nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }

// Ping checks the database, for a readiness check.
func (s *SQLiteStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Create implements Store.
func (s *SQLiteStore) Create(ctx context.Context, u User) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (id, email, name, password_hash, admin, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, u.ID, strings.ToLower(u.Email), u.Name, u.PasswordHash, u.Admin, u.CreatedAt.UnixMilli())
	if sqlitedb.IsUniqueViolation(err) {
		return ErrEmailTaken
	}
	if err != nil {
		return fmt.Errorf("users: create: %w", err)
	}
	return nil
}

// ByEmail implements Store.
func (s *SQLiteStore) ByEmail(ctx context.Context, email string) (User, error) {
	return s.one(ctx, `WHERE email = ?`, strings.ToLower(email))
}

// ByID implements Store.
func (s *SQLiteStore) ByID(ctx context.Context, id string) (User, error) {
	return s.one(ctx, `WHERE id = ?`, id)
}

func (s *SQLiteStore) one(ctx context.Context, where string, arg any) (User, error) {
	var (
		u       User
		created int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, email, name, password_hash, admin, created_at FROM users `+where, arg).
		Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.Admin, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("users: read: %w", err)
	}
	u.CreatedAt = time.UnixMilli(created)
	return u, nil
}
