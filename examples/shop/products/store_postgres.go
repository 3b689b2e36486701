package products

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pier-go/pier/examples/shop/internal/pgdb"
)

var pgMigrations = []string{`
CREATE TABLE products (
	id          TEXT COLLATE "C" PRIMARY KEY, -- byte order, as the ids sort

	name        TEXT NOT NULL,
	price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
	stock       BIGINT NOT NULL CHECK (stock >= 0),
	created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE reservations (
	id          TEXT PRIMARY KEY,
	product_id  TEXT NOT NULL,            -- '' for a release that came first
	quantity    BIGINT NOT NULL,
	price_cents BIGINT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('reserved', 'released')),
	created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
	updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);`}

// PostgresStore is the Store in PostgreSQL, in the schema "products". It is
// safe for concurrent use, also by several processes on one database:
//
//   - Reserve first claims the reservation id with INSERT ... ON CONFLICT DO
//     NOTHING (a second reserve of one id waits for the first's transaction and
//     then finds its row), then takes the stock with UPDATE ... SET stock =
//     stock - q WHERE stock >= q, which PostgreSQL re-checks on the newest row
//     after waiting for a concurrent reserve's lock, so stock never goes below
//     zero (the CHECK constraint would refuse it anyway).
//   - Release turns a reserved row into a released one with UPDATE ... WHERE
//     state = 'reserved', so only one of several releases of an id puts the
//     stock back.
//
// Both lock the reservation row before the product row, so they never
// deadlock each other.
type PostgresStore struct{ pool *pgxpool.Pool }

// OpenPostgres connects to the database at url (postgres://...), creating
// and migrating the schema "products".
func OpenPostgres(ctx context.Context, url string) (*PostgresStore, error) {
	pool, err := pgdb.Open(ctx, url, "products", pgMigrations)
	if err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	return &PostgresStore{pool: pool}, nil
}

// Close closes the pool.
func (s *PostgresStore) Close() error { s.pool.Close(); return nil }

// Ping checks the database, for a readiness check.
func (s *PostgresStore) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// List implements Store.
func (s *PostgresStore) List(ctx context.Context, after string, limit int) ([]Product, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, price_cents, stock FROM products
		WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("products: list: %w", err)
	}
	// Never nil (CollectRows starts from an empty slice), so that an empty
	// page is [] in JSON.
	ps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Product, error) {
		var p Product
		err := row.Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("products: list: %w", err)
	}
	return ps, nil
}

// Get implements Store.
func (s *PostgresStore) Get(ctx context.Context, id string) (Product, error) {
	var p Product
	err := s.pool.QueryRow(ctx, `SELECT id, name, price_cents, stock FROM products WHERE id = $1`, id).
		Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock)
	if errors.Is(err, pgx.ErrNoRows) {
		return Product{}, ErrNotFound
	}
	if err != nil {
		return Product{}, fmt.Errorf("products: get: %w", err)
	}
	return p, nil
}

// Restock implements Store: one UPDATE, so concurrent restocks and
// reservations add up.
func (s *PostgresStore) Restock(ctx context.Context, id string, quantity int64) (Product, error) {
	var p Product
	err := s.pool.QueryRow(ctx, `UPDATE products SET stock = stock + $1 WHERE id = $2
		RETURNING id, name, price_cents, stock`, quantity, id).Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock)
	if errors.Is(err, pgx.ErrNoRows) {
		return Product{}, ErrNotFound
	}
	if err != nil {
		return Product{}, fmt.Errorf("products: restock: %w", err)
	}
	return p, nil
}

// Create implements Store.
func (s *PostgresStore) Create(ctx context.Context, p Product) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO products (id, name, price_cents, stock) VALUES ($1, $2, $3, $4)`,
		p.ID, p.Name, p.PriceCents, p.Stock); err != nil {
		return fmt.Errorf("products: create: %w", err)
	}
	return nil
}

// Reserve implements Store in one transaction (see PostgresStore).
func (s *PostgresStore) Reserve(ctx context.Context, r Reservation) (Reservation, bool, error) {
	var (
		out     Reservation
		created bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO reservations (id, product_id, quantity, price_cents, state)
			VALUES ($1, $2, $3, 0, 'reserved') ON CONFLICT (id) DO NOTHING`, r.ID, r.ProductID, r.Quantity)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 { // the id reserved or released already
			old, err := pgReservation(ctx, tx, r.ID)
			switch {
			case err != nil:
				return err
			case old.State == Released:
				return ErrReleased
			case old.ProductID != r.ProductID || old.Quantity != r.Quantity:
				return ErrMismatch
			}
			out = old
			return nil
		}
		err = tx.QueryRow(ctx, `UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1
			RETURNING price_cents`, r.Quantity, r.ProductID).Scan(&r.PriceCents)
		if errors.Is(err, pgx.ErrNoRows) {
			var stock int64
			err = tx.QueryRow(ctx, `SELECT stock FROM products WHERE id = $1`, r.ProductID).Scan(&stock)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			return &InsufficientError{ProductID: r.ProductID, Available: stock}
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE reservations SET price_cents = $1 WHERE id = $2`, r.PriceCents, r.ID); err != nil {
			return err
		}
		r.State = Reserved
		out, created = r, true
		return nil
	})
	if err != nil {
		var short *InsufficientError
		if errors.Is(err, ErrReleased) || errors.Is(err, ErrMismatch) || errors.Is(err, ErrNotFound) || errors.As(err, &short) {
			return Reservation{}, false, err
		}
		return Reservation{}, false, fmt.Errorf("products: reserve: %w", err)
	}
	return out, created, nil
}

// Release implements Store in one transaction (see PostgresStore).
func (s *PostgresStore) Release(ctx context.Context, id string) (Reservation, error) {
	var out Reservation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Released before it was ever reserved: recorded, so that a late
		// reserve of the id takes nothing.
		tag, err := tx.Exec(ctx, `INSERT INTO reservations (id, product_id, quantity, price_cents, state)
			VALUES ($1, '', 0, 0, 'released') ON CONFLICT (id) DO NOTHING`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			out = Reservation{ID: id, State: Released}
			return nil
		}
		r := Reservation{ID: id, State: Released}
		err = tx.QueryRow(ctx, `UPDATE reservations SET state = 'released', updated_at = now()
			WHERE id = $1 AND state = 'reserved' RETURNING product_id, quantity, price_cents`, id).
			Scan(&r.ProductID, &r.Quantity, &r.PriceCents)
		if errors.Is(err, pgx.ErrNoRows) { // released already
			out, err = pgReservation(ctx, tx, id)
			return err
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE products SET stock = stock + $1 WHERE id = $2`, r.Quantity, r.ProductID); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return Reservation{}, fmt.Errorf("products: release: %w", err)
	}
	return out, nil
}

func pgReservation(ctx context.Context, tx pgx.Tx, id string) (Reservation, error) {
	r := Reservation{ID: id}
	err := tx.QueryRow(ctx, `SELECT product_id, quantity, price_cents, state FROM reservations WHERE id = $1`, id).
		Scan(&r.ProductID, &r.Quantity, &r.PriceCents, &r.State)
	return r, err
}
