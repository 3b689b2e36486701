package products

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pier-go/pier/examples/shop/internal/sqlitedb"
)

// Product is a product with its stock.
type Product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

// Reservation holds Quantity units of a product for its ID, at the price the
// product had when they were reserved.
type Reservation struct {
	ID         string `json:"id"`
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
	State      string `json:"state"` // "reserved" or "released"
}

// Reservation states.
const (
	Reserved = "reserved"
	Released = "released"
)

// Errors a Store returns for states the handlers answer.
var (
	ErrNotFound = errors.New("products: not found")
	// ErrReleased: the reservation id was released (or released before it was
	// ever reserved) and cannot reserve again.
	ErrReleased = errors.New("products: reservation released")
	// ErrMismatch: the reservation id holds another product or quantity.
	ErrMismatch = errors.New("products: reservation id reused for another product or quantity")
)

// InsufficientError is a reservation that stock cannot cover.
type InsufficientError struct {
	ProductID string
	Available int64
}

// Error says which product is short and how much is left.
func (e *InsufficientError) Error() string {
	return fmt.Sprintf("products: insufficient stock of %s: %d available", e.ProductID, e.Available)
}

// Store keeps products and reservations. SQLiteStore (OpenSQLite) and
// PostgresStore (OpenPostgres) implement it. Implementations must be safe for
// concurrent use, and Reserve and Release atomic.
type Store interface {
	// List returns up to limit products with ids after after ("" for the
	// first page), in id order, which is creation order to the millisecond.
	List(ctx context.Context, after string, limit int) ([]Product, error)
	Get(ctx context.Context, id string) (Product, error) // ErrNotFound
	Create(ctx context.Context, p Product) error
	// Reserve takes r.Quantity of r.ProductID from stock for r.ID, or, when
	// r.ID holds that reservation already, changes nothing; created tells
	// which. Errors: ErrNotFound, *InsufficientError, ErrReleased, ErrMismatch.
	Reserve(ctx context.Context, r Reservation) (res Reservation, created bool, err error)
	// Restock adds quantity units to a product's stock and returns it.
	Restock(ctx context.Context, id string, quantity int64) (Product, error) // ErrNotFound
	// Release puts back what id holds, once. An unknown id is recorded as
	// released so that a reservation arriving late cannot take stock.
	Release(ctx context.Context, id string) (Reservation, error)
}

var migrations = []string{`
CREATE TABLE products (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
	stock       INTEGER NOT NULL CHECK (stock >= 0),
	created_at  INTEGER NOT NULL
);
CREATE TABLE reservations (
	id          TEXT PRIMARY KEY,
	product_id  TEXT NOT NULL,            -- '' for a release that came first
	quantity    INTEGER NOT NULL,
	price_cents INTEGER NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('reserved', 'released')),
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);`}

// SQLiteStore is the Store in a SQLite file, products.db in the data directory.
type SQLiteStore struct{ db *sql.DB }

// OpenSQLite opens (creating and migrating it) dir/products.db.
func OpenSQLite(ctx context.Context, dir string) (*SQLiteStore, error) {
	db, err := sqlitedb.Open(ctx, dir, "products.db", migrations)
	if err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	return &SQLiteStore{db: db}, nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }

// Ping checks the database, for a readiness check.
func (s *SQLiteStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// List implements Store.
func (s *SQLiteStore) List(ctx context.Context, after string, limit int) ([]Product, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, price_cents, stock FROM products
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("products: list: %w", err)
	}
	defer rows.Close()
	ps := []Product{}
	for rows.Next() {
		var p Product
		if err := rows.Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock); err != nil {
			return nil, fmt.Errorf("products: list: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("products: list: %w", err)
	}
	return ps, nil
}

// Get implements Store.
func (s *SQLiteStore) Get(ctx context.Context, id string) (Product, error) {
	var p Product
	err := s.db.QueryRowContext(ctx, `SELECT id, name, price_cents, stock FROM products WHERE id = ?`, id).
		Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock)
	if errors.Is(err, sql.ErrNoRows) {
		return Product{}, ErrNotFound
	}
	if err != nil {
		return Product{}, fmt.Errorf("products: get: %w", err)
	}
	return p, nil
}

// Create implements Store.
func (s *SQLiteStore) Create(ctx context.Context, p Product) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO products (id, name, price_cents, stock, created_at)
		VALUES (?, ?, ?, ?, ?)`, p.ID, p.Name, p.PriceCents, p.Stock, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("products: create: %w", err)
	}
	return nil
}

// Reserve implements Store in one transaction: the reservation row decides
// whether this id reserved already, and a single UPDATE ... WHERE stock >= ?
// takes the stock, so two reservations can never both take the last unit.
func (s *SQLiteStore) Reserve(ctx context.Context, r Reservation) (Reservation, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see sqlitedb)
	if err != nil {
		return Reservation{}, false, fmt.Errorf("products: reserve: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	old, err := reservation(ctx, tx, r.ID)
	switch {
	case err == nil && old.State == Released:
		return Reservation{}, false, ErrReleased
	case err == nil && (old.ProductID != r.ProductID || old.Quantity != r.Quantity):
		return Reservation{}, false, ErrMismatch
	case err == nil:
		return old, false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return Reservation{}, false, fmt.Errorf("products: reserve: %w", err)
	}

	err = tx.QueryRowContext(ctx, `UPDATE products SET stock = stock - ?1 WHERE id = ?2 AND stock >= ?1
		RETURNING price_cents`, r.Quantity, r.ProductID).Scan(&r.PriceCents)
	if errors.Is(err, sql.ErrNoRows) {
		var stock int64
		err = tx.QueryRowContext(ctx, `SELECT stock FROM products WHERE id = ?`, r.ProductID).Scan(&stock)
		if errors.Is(err, sql.ErrNoRows) {
			return Reservation{}, false, ErrNotFound
		}
		if err != nil {
			return Reservation{}, false, fmt.Errorf("products: reserve: %w", err)
		}
		return Reservation{}, false, &InsufficientError{ProductID: r.ProductID, Available: stock}
	}
	if err != nil {
		return Reservation{}, false, fmt.Errorf("products: reserve: %w", err)
	}
	r.State = Reserved
	now := time.Now().UnixMilli()
	if _, err := tx.ExecContext(ctx, `INSERT INTO reservations (id, product_id, quantity, price_cents, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, r.ProductID, r.Quantity, r.PriceCents, r.State, now, now); err != nil {
		return Reservation{}, false, fmt.Errorf("products: reserve: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Reservation{}, false, fmt.Errorf("products: reserve: %w", err)
	}
	return r, true, nil
}

// Release implements Store in one transaction.
func (s *SQLiteStore) Release(ctx context.Context, id string) (Reservation, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Reservation{}, fmt.Errorf("products: release: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UnixMilli()
	r, err := reservation(ctx, tx, id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r = Reservation{ID: id, State: Released}
		_, err = tx.ExecContext(ctx, `INSERT INTO reservations (id, product_id, quantity, price_cents, state, created_at, updated_at)
			VALUES (?, '', 0, 0, 'released', ?, ?)`, id, now, now)
	case err != nil:
	case r.State == Released:
		return r, nil
	default:
		r.State = Released
		if _, err = tx.ExecContext(ctx, `UPDATE reservations SET state = 'released', updated_at = ? WHERE id = ?`, now, id); err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE products SET stock = stock + ? WHERE id = ?`, r.Quantity, r.ProductID)
		}
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return Reservation{}, fmt.Errorf("products: release: %w", err)
	}
	return r, nil
}

func reservation(ctx context.Context, tx *sql.Tx, id string) (Reservation, error) {
	r := Reservation{ID: id}
	err := tx.QueryRowContext(ctx, `SELECT product_id, quantity, price_cents, state FROM reservations WHERE id = ?`, id).
		Scan(&r.ProductID, &r.Quantity, &r.PriceCents, &r.State)
	return r, err
}

// Restock implements Store.
func (s *SQLiteStore) Restock(ctx context.Context, id string, quantity int64) (Product, error) {
	var p Product
	err := s.db.QueryRowContext(ctx, `UPDATE products SET stock = stock + ? WHERE id = ?
		RETURNING id, name, price_cents, stock`, quantity, id).Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock)
	if errors.Is(err, sql.ErrNoRows) {
		return Product{}, ErrNotFound
	}
	if err != nil {
		return Product{}, fmt.Errorf("products: restock: %w", err)
	}
	return p, nil
}
