package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pier-go/pier/examples/shop/internal/pgdb"
	"github.com/pier-go/pier/examples/shop/internal/pgidem"
	"github.com/pier-go/pier/idempotency"
)

var pgMigrations = []string{`
CREATE TABLE charges (
	reference    TEXT PRIMARY KEY,
	id           TEXT NOT NULL UNIQUE,
	amount_cents BIGINT NOT NULL,
	card_last4   TEXT NOT NULL,
	status       TEXT NOT NULL CHECK (status IN ('captured', 'declined', 'refunded', 'voided')),
	decline_code TEXT NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
	updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);`, pgidem.Schema}

// PostgresStore is the Store in PostgreSQL, in the schema "payments", which
// also holds the idempotency keys of POST /charges. It is safe for concurrent
// use, also by several processes on one database: the primary key on the
// reference lets one charge in (INSERT ... ON CONFLICT DO NOTHING), and a
// refund is UPDATE ... WHERE status = 'captured', which only one of several
// concurrent refunds gets a row back from.
type PostgresStore struct {
	pool *pgxpool.Pool
	keys *pgidem.Store
}

// OpenPostgres connects to the database at url (postgres://...), creating
// and migrating the schema "payments".
func OpenPostgres(ctx context.Context, url string) (*PostgresStore, error) {
	pool, err := pgdb.Open(ctx, url, "payments", pgMigrations)
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	keys, err := pgidem.New(pool, 0)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("payments: %w", err)
	}
	return &PostgresStore{pool: pool, keys: keys}, nil
}

// IdempotencyStore returns the store of the idempotency keys of POST
// /charges, in the same schema.
func (s *PostgresStore) IdempotencyStore() (idempotency.Store, error) { return s.keys, nil }

// Close closes the pool.
func (s *PostgresStore) Close() error { s.pool.Close(); return nil }

// Ping checks the database, for a readiness check.
func (s *PostgresStore) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

func pgScanCharge(row pgx.Row) (Charge, error) {
	var c Charge
	err := row.Scan(&c.ID, &c.Reference, &c.AmountCents, &c.CardLast4, &c.Status, &c.DeclineCode)
	if errors.Is(err, pgx.ErrNoRows) {
		return Charge{}, ErrNotFound
	}
	return c, err
}

// Create implements Store.
func (s *PostgresStore) Create(ctx context.Context, c Charge) (Charge, bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO charges (`+chargeCols+`)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (reference) DO NOTHING`,
		c.ID, c.Reference, c.AmountCents, c.CardLast4, c.Status, c.DeclineCode)
	if err != nil {
		return Charge{}, false, fmt.Errorf("payments: charge: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return c, true, nil
	}
	old, err := pgScanCharge(s.pool.QueryRow(ctx, `SELECT `+chargeCols+` FROM charges WHERE reference = $1`, c.Reference))
	if err != nil {
		return Charge{}, false, fmt.Errorf("payments: charge: %w", err)
	}
	if old.Status == Voided {
		return Charge{}, false, ErrVoided
	}
	return old, false, nil
}

// ByID implements Store.
func (s *PostgresStore) ByID(ctx context.Context, id string) (Charge, error) {
	c, err := pgScanCharge(s.pool.QueryRow(ctx, `SELECT `+chargeCols+` FROM charges WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Charge{}, fmt.Errorf("payments: read: %w", err)
	}
	return c, err
}

// Refund implements Store. Each step is one statement; a charge that arrives
// between them (the void's INSERT then finds its row) is refunded by the next
// round.
func (s *PostgresStore) Refund(ctx context.Context, reference string) (Charge, bool, error) {
	for range 3 {
		c, err := pgScanCharge(s.pool.QueryRow(ctx, `UPDATE charges SET status = 'refunded', updated_at = now()
			WHERE reference = $1 AND status = 'captured' RETURNING `+chargeCols, reference))
		if err == nil {
			return c, true, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Charge{}, false, fmt.Errorf("payments: refund: %w", err)
		}
		c = Charge{ID: "void_" + reference, Reference: reference, Status: Voided}
		tag, err := s.pool.Exec(ctx, `INSERT INTO charges (`+chargeCols+`)
			VALUES ($1, $2, 0, '', 'voided', '') ON CONFLICT (reference) DO NOTHING`, c.ID, reference)
		if err != nil {
			return Charge{}, false, fmt.Errorf("payments: refund: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return c, true, nil
		}
		c, err = pgScanCharge(s.pool.QueryRow(ctx, `SELECT `+chargeCols+` FROM charges WHERE reference = $1`, reference))
		if err != nil {
			return Charge{}, false, fmt.Errorf("payments: refund: %w", err)
		}
		if c.Status != Captured {
			return c, false, nil
		}
	}
	return Charge{}, false, fmt.Errorf("payments: refund %s: the charge keeps changing", reference)
}

// List implements Store.
func (s *PostgresStore) List(ctx context.Context, since time.Time, after string, limit int) ([]Charge, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+chargeCols+` FROM charges
		WHERE created_at >= $1 AND id COLLATE "C" > $2 ORDER BY id COLLATE "C" LIMIT $3`, since, after, limit)
	if err != nil {
		return nil, fmt.Errorf("payments: list: %w", err)
	}
	defer rows.Close()
	cs := []Charge{}
	for rows.Next() {
		c, err := pgScanCharge(rows)
		if err != nil {
			return nil, fmt.Errorf("payments: list: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("payments: list: %w", err)
	}
	return cs, nil
}
