package orders

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pier-go/pier/examples/shop/internal/pgdb"
	"github.com/pier-go/pier/examples/shop/internal/pgidem"
	"github.com/pier-go/pier/idempotency"
)

var pgMigrations = []string{`
CREATE TABLE orders (
	id          TEXT COLLATE "C" PRIMARY KEY, -- byte order, as the ids sort
	user_id     TEXT NOT NULL,
	status      TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
	reason      TEXT NOT NULL DEFAULT '',
	total_cents BIGINT NOT NULL DEFAULT 0,
	compensated BOOLEAN NOT NULL DEFAULT false,
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_status ON orders (status, created_at);
CREATE TABLE order_items (
	order_id    TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	position    INTEGER NOT NULL,
	product_id  TEXT NOT NULL,
	quantity    BIGINT NOT NULL,
	price_cents BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (order_id, position)
);`, pgidem.Schema, `
CREATE TABLE owed (
	kind       TEXT NOT NULL CHECK (kind IN ('refund', 'release')),
	target     TEXT NOT NULL,
	order_id   TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (kind, target)
);`}

// PostgresStore is the Store in PostgreSQL, in the schema "orders", which
// also holds the idempotency keys of POST /orders. It is safe for concurrent
// use, also by several processes on one database: Transition is UPDATE ...
// WHERE id = $1 AND status = $2, which PostgreSQL re-checks on the newest row
// after waiting for a concurrent transition's lock, so only one of several
// instances moves an order out of a status.
type PostgresStore struct {
	pool *pgxpool.Pool
	keys *pgidem.Store
}

// OpenPostgres connects to the database at url (postgres://...), creating
// and migrating the schema "orders".
func OpenPostgres(ctx context.Context, url string) (*PostgresStore, error) {
	pool, err := pgdb.Open(ctx, url, "orders", pgMigrations)
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	keys, err := pgidem.New(pool, 0)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("orders: %w", err)
	}
	return &PostgresStore{pool: pool, keys: keys}, nil
}

// IdempotencyStore returns the store of the idempotency keys of POST
// /orders, in the same schema.
func (s *PostgresStore) IdempotencyStore() (idempotency.Store, error) { return s.keys, nil }

// Close closes the pool.
func (s *PostgresStore) Close() error { s.pool.Close(); return nil }

// Ping checks the database, for a readiness check.
func (s *PostgresStore) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Create implements Store.
func (s *PostgresStore) Create(ctx context.Context, o Order) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO orders (id, user_id, status, reason, total_cents, compensated, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, o.ID, o.UserID, o.Status, o.Reason, o.TotalCents, o.Compensated, o.CreatedAt); err != nil {
			return err
		}
		for i, it := range o.Items {
			if _, err := tx.Exec(ctx, `INSERT INTO order_items (order_id, position, product_id, quantity, price_cents)
				VALUES ($1, $2, $3, $4, $5)`, o.ID, i, it.ProductID, it.Quantity, it.PriceCents); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("orders: create: %w", err)
	}
	return nil
}

// Get implements Store.
func (s *PostgresStore) Get(ctx context.Context, id string) (Order, error) {
	os, err := s.query(ctx, `WHERE id = $1`, id)
	if err != nil {
		return Order{}, err
	}
	if len(os) == 0 {
		return Order{}, ErrNotFound
	}
	return os[0], nil
}

// List implements Store.
func (s *PostgresStore) List(ctx context.Context, userID string, limit int) ([]Order, error) {
	return s.query(ctx, `WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, userID, limit)
}

// query reads the orders and then their items, in one snapshot.
func (s *PostgresStore) query(ctx context.Context, where string, args ...any) ([]Order, error) {
	var out []Order
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, user_id, status, reason, total_cents, compensated, created_at
			FROM orders `+where, args...)
		if err != nil {
			return err
		}
		// Never nil: CollectRows starts from an empty slice.
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Order, error) {
			var o Order
			err := row.Scan(&o.ID, &o.UserID, &o.Status, &o.Reason, &o.TotalCents, &o.Compensated, &o.CreatedAt)
			o.Items = []Item{}
			return o, err
		})
		if err != nil || len(out) == 0 {
			return err
		}
		ids := make([]string, len(out))
		at := make(map[string]int, len(out))
		for i, o := range out {
			ids[i], at[o.ID] = o.ID, i
		}
		rows, err = tx.Query(ctx, `SELECT order_id, product_id, quantity, price_cents FROM order_items
			WHERE order_id = ANY($1) ORDER BY order_id, position`, ids)
		if err != nil {
			return err
		}
		var (
			orderID string
			it      Item
		)
		_, err = pgx.ForEachRow(rows, []any{&orderID, &it.ProductID, &it.Quantity, &it.PriceCents}, func() error {
			o := &out[at[orderID]]
			o.Items = append(o.Items, it)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("orders: read: %w", err)
	}
	return out, nil
}

// Transition implements Store.
func (s *PostgresStore) Transition(ctx context.Context, from string, o Order) (bool, error) {
	moved := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE orders SET status = $1, reason = $2, total_cents = $3, compensated = $4, updated_at = $5
			WHERE id = $6 AND status = $7`, o.Status, o.Reason, o.TotalCents, o.Compensated, time.Now(), o.ID, from)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		for i, it := range o.Items {
			if _, err := tx.Exec(ctx, `UPDATE order_items SET price_cents = $1 WHERE order_id = $2 AND position = $3`,
				it.PriceCents, o.ID, i); err != nil {
				return err
			}
		}
		moved = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("orders: update: %w", err)
	}
	return moved, nil
}

// Delete implements Store.
func (s *PostgresStore) Delete(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM orders WHERE id = $1 AND status = 'pending'`, id); err != nil {
		return fmt.Errorf("orders: delete: %w", err)
	}
	return nil
}

// Stale implements Store.
func (s *PostgresStore) Stale(ctx context.Context, before time.Time, limit int) ([]Order, error) {
	return s.query(ctx, `WHERE status = 'pending' AND created_at < $1 ORDER BY created_at, id LIMIT $2`, before, limit)
}

// Owe implements Store.
func (s *PostgresStore) Owe(ctx context.Context, steps []Step) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, st := range steps {
			if _, err := tx.Exec(ctx, `INSERT INTO owed (kind, target, order_id) VALUES ($1, $2, $3)
				ON CONFLICT DO NOTHING`, st.Kind, st.Target, st.OrderID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("orders: owe: %w", err)
	}
	return nil
}

// Owed implements Store.
func (s *PostgresStore) Owed(ctx context.Context, limit int) ([]Step, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, target, order_id FROM owed ORDER BY created_at, kind, target LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("orders: owed: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Step, error) {
		var st Step
		err := row.Scan(&st.Kind, &st.Target, &st.OrderID)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("orders: owed: %w", err)
	}
	return out, nil
}

// Paid implements Store.
func (s *PostgresStore) Paid(ctx context.Context, st Step) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM owed WHERE kind = $1 AND target = $2`, st.Kind, st.Target); err != nil {
		return fmt.Errorf("orders: paid: %w", err)
	}
	return nil
}
