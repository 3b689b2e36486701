package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pier-go/pier/examples/shop/internal/sqlidem"
	"github.com/pier-go/pier/examples/shop/internal/sqlitedb"
)

// Order statuses, lower case as they appear in JSON.
const (
	Pending   = "pending"
	Confirmed = "confirmed"
	Rejected  = "rejected"
	Cancelled = "cancelled"
)

// Item is a line of an order.
type Item struct {
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

// Order is an order as the store keeps it.
type Order struct {
	ID         string
	UserID     string
	Status     string
	Reason     string // why it was rejected
	Items      []Item
	TotalCents int64
	// Compensated is set once a cancelled order's refund and releases are done.
	Compensated bool
	CreatedAt   time.Time
}

// ErrNotFound is what a Store returns for an unknown order.
var ErrNotFound = errors.New("orders: not found")

// Store keeps orders. SQLiteStore (OpenSQLite) and PostgresStore
// (OpenPostgres) implement it. Implementations must be safe for concurrent
// use.
type Store interface {
	// Create records o, with its items.
	Create(ctx context.Context, o Order) error
	Get(ctx context.Context, id string) (Order, error) // ErrNotFound
	// List returns the user's orders, newest first, at most limit.
	List(ctx context.Context, userID string, limit int) ([]Order, error)
	// Transition moves order o.ID from status from to o.Status, writing o's
	// item prices, total, reason and Compensated, in one conditional update;
	// ok is false, and nothing written, when the order's status was not from.
	Transition(ctx context.Context, from string, o Order) (ok bool, err error)
	// Delete removes a pending order and its items.
	Delete(ctx context.Context, id string) error
	// Stale returns up to limit pending orders created before before, oldest
	// first: placements that died or could not undo themselves.
	Stale(ctx context.Context, before time.Time, limit int) ([]Order, error)
	// Owe records undo steps that failed, for the sweeper to retry; a step
	// owed already is not recorded twice. Owed returns up to limit of them,
	// oldest first; Paid drops one once done.
	Owe(ctx context.Context, steps []Step) error
	Owed(ctx context.Context, limit int) ([]Step, error)
	Paid(ctx context.Context, s Step) error
}

// Step is an undo step owed: a refund of an order's charge (Target the order
// id, the charge's reference) or a release of a reservation (Target its id).
type Step struct {
	Kind    string // StepRefund or StepRelease
	Target  string
	OrderID string
}

// Kinds of Step.
const (
	StepRefund  = "refund"
	StepRelease = "release"
)

var migrations = []string{`
CREATE TABLE orders (
	id          TEXT PRIMARY KEY,
	user_id     TEXT NOT NULL,
	status      TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
	reason      TEXT NOT NULL DEFAULT '',
	total_cents INTEGER NOT NULL DEFAULT 0,
	compensated INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_status ON orders (status, created_at);
CREATE TABLE order_items (
	order_id    TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	position    INTEGER NOT NULL,
	product_id  TEXT NOT NULL,
	quantity    INTEGER NOT NULL,
	price_cents INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (order_id, position)
);`, sqlidem.Schema, `
CREATE TABLE owed (
	kind       TEXT NOT NULL CHECK (kind IN ('refund', 'release')),
	target     TEXT NOT NULL,
	order_id   TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (kind, target)
);`}

// SQLiteStore is the Store in a SQLite file, orders.db in the data directory,
// which also holds the idempotency keys of POST /orders.
type SQLiteStore struct{ db *sql.DB }

// OpenSQLite opens (creating and migrating it) dir/orders.db.
func OpenSQLite(ctx context.Context, dir string) (*SQLiteStore, error) {
	db, err := sqlitedb.Open(ctx, dir, "orders.db", migrations)
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	return &SQLiteStore{db: db}, nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }

// Ping checks the database, for a readiness check.
func (s *SQLiteStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Create implements Store.
func (s *SQLiteStore) Create(ctx context.Context, o Order) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("orders: create: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UnixMilli()
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id, user_id, status, reason, total_cents, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, o.ID, o.UserID, o.Status, o.Reason, o.TotalCents, o.CreatedAt.UnixMilli(), now); err != nil {
		return fmt.Errorf("orders: create: %w", err)
	}
	for i, it := range o.Items {
		if _, err := tx.ExecContext(ctx, `INSERT INTO order_items (order_id, position, product_id, quantity, price_cents)
			VALUES (?, ?, ?, ?, ?)`, o.ID, i, it.ProductID, it.Quantity, it.PriceCents); err != nil {
			return fmt.Errorf("orders: create: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("orders: create: %w", err)
	}
	return nil
}

// Get implements Store.
func (s *SQLiteStore) Get(ctx context.Context, id string) (Order, error) {
	os, err := s.query(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Order{}, err
	}
	if len(os) == 0 {
		return Order{}, ErrNotFound
	}
	return os[0], nil
}

// List implements Store.
func (s *SQLiteStore) List(ctx context.Context, userID string, limit int) ([]Order, error) {
	return s.query(ctx, `WHERE user_id = ? ORDER BY id DESC LIMIT ?`, userID, limit)
}

func (s *SQLiteStore) query(ctx context.Context, where string, args ...any) ([]Order, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, user_id, status, reason, total_cents, compensated, created_at
		FROM orders `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("orders: read: %w", err)
	}
	defer rows.Close()
	out := []Order{}
	for rows.Next() {
		var (
			o       Order
			created int64
		)
		if err := rows.Scan(&o.ID, &o.UserID, &o.Status, &o.Reason, &o.TotalCents, &o.Compensated, &created); err != nil {
			return nil, fmt.Errorf("orders: read: %w", err)
		}
		o.CreatedAt = time.UnixMilli(created)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("orders: read: %w", err)
	}
	rows.Close()
	if err := s.items(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// items fills in the items of orders, all in one query.
func (s *SQLiteStore) items(ctx context.Context, orders []Order) error {
	if len(orders) == 0 {
		return nil
	}
	ids := make([]string, len(orders))
	at := make(map[string]int, len(orders))
	for i := range orders {
		ids[i], at[orders[i].ID] = orders[i].ID, i
		orders[i].Items = []Item{}
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("orders: read items: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT order_id, product_id, quantity, price_cents FROM order_items
		WHERE order_id IN (SELECT value FROM json_each(?)) ORDER BY order_id, position`, string(list))
	if err != nil {
		return fmt.Errorf("orders: read items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			orderID string
			it      Item
		)
		if err := rows.Scan(&orderID, &it.ProductID, &it.Quantity, &it.PriceCents); err != nil {
			return fmt.Errorf("orders: read items: %w", err)
		}
		o := &orders[at[orderID]]
		o.Items = append(o.Items, it)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("orders: read items: %w", err)
	}
	return nil
}

// Transition implements Store.
func (s *SQLiteStore) Transition(ctx context.Context, from string, o Order) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("orders: update: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, `UPDATE orders SET status = ?, reason = ?, total_cents = ?, compensated = ?, updated_at = ?
		WHERE id = ? AND status = ?`, o.Status, o.Reason, o.TotalCents, o.Compensated, time.Now().UnixMilli(), o.ID, from)
	if err != nil {
		return false, fmt.Errorf("orders: update: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	for i, it := range o.Items {
		if _, err := tx.ExecContext(ctx, `UPDATE order_items SET price_cents = ? WHERE order_id = ? AND position = ?`,
			it.PriceCents, o.ID, i); err != nil {
			return false, fmt.Errorf("orders: update: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("orders: update: %w", err)
	}
	return true, nil
}

// Delete implements Store.
func (s *SQLiteStore) Delete(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM orders WHERE id = ? AND status = 'pending'`, id); err != nil {
		return fmt.Errorf("orders: delete: %w", err)
	}
	return nil
}

// Stale implements Store.
func (s *SQLiteStore) Stale(ctx context.Context, before time.Time, limit int) ([]Order, error) {
	return s.query(ctx, `WHERE status = 'pending' AND created_at < ? ORDER BY created_at LIMIT ?`, before.UnixMilli(), limit)
}

// Owe implements Store.
func (s *SQLiteStore) Owe(ctx context.Context, steps []Step) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("orders: owe: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UnixMilli()
	for _, st := range steps {
		if _, err := tx.ExecContext(ctx, `INSERT INTO owed (kind, target, order_id, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, st.Kind, st.Target, st.OrderID, now); err != nil {
			return fmt.Errorf("orders: owe: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("orders: owe: %w", err)
	}
	return nil
}

// Owed implements Store.
func (s *SQLiteStore) Owed(ctx context.Context, limit int) ([]Step, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, target, order_id FROM owed ORDER BY created_at LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("orders: owed: %w", err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var st Step
		if err := rows.Scan(&st.Kind, &st.Target, &st.OrderID); err != nil {
			return nil, fmt.Errorf("orders: owed: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("orders: owed: %w", err)
	}
	return out, nil
}

// Paid implements Store.
func (s *SQLiteStore) Paid(ctx context.Context, st Step) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM owed WHERE kind = ? AND target = ?`, st.Kind, st.Target); err != nil {
		return fmt.Errorf("orders: paid: %w", err)
	}
	return nil
}
