package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pier-go/pier/examples/shop/internal/sqlidem"
	"github.com/pier-go/pier/examples/shop/internal/sqlitedb"
)

// Charge is a charge as the processor keeps it.
type Charge struct {
	ID          string `json:"id"`
	Reference   string `json:"reference"`
	AmountCents int64  `json:"amount_cents"`
	CardLast4   string `json:"card_last4"`
	Status      string `json:"status"`
	DeclineCode string `json:"decline_code,omitempty"`
}

// Charge statuses.
const (
	Captured = "captured"
	Declined = "declined"
	Refunded = "refunded"
	// Voided: a refund came for a reference before any charge; a charge for
	// it is refused.
	Voided = "voided"
)

// Errors a Store returns for states the handlers answer.
var (
	ErrNotFound = errors.New("payments: not found")
	ErrVoided   = errors.New("payments: reference voided")
)

// Store keeps charges, one per reference. SQLite implements it (OpenSQLite);
// implementations must be safe for concurrent use.
type Store interface {
	// Create records c unless its reference has a charge already, which it
	// then returns with created false; ErrVoided for a voided reference.
	Create(ctx context.Context, c Charge) (res Charge, created bool, err error)
	ByID(ctx context.Context, id string) (Charge, error) // ErrNotFound
	// Refund turns the reference's captured charge into a refunded one, once;
	// other charges are returned unchanged. A reference without a charge is
	// recorded as voided. changed tells whether this call refunded or voided.
	Refund(ctx context.Context, reference string) (res Charge, changed bool, err error)
	// List returns up to limit charges made at since or later, with ids
	// after after ("" for the first page), in id order.
	List(ctx context.Context, since time.Time, after string, limit int) ([]Charge, error)
}

var migrations = []string{`
CREATE TABLE charges (
	reference    TEXT PRIMARY KEY,
	id           TEXT NOT NULL UNIQUE,
	amount_cents INTEGER NOT NULL,
	card_last4   TEXT NOT NULL,
	status       TEXT NOT NULL CHECK (status IN ('captured', 'declined', 'refunded', 'voided')),
	decline_code TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);`, sqlidem.Schema}

// SQLiteStore is the Store in a SQLite file, payments.db in the data
// directory, which also holds the idempotency keys of POST /charges.
type SQLiteStore struct{ db *sql.DB }

// OpenSQLite opens (creating and migrating it) dir/payments.db.
func OpenSQLite(ctx context.Context, dir string) (*SQLiteStore, error) {
	db, err := sqlitedb.Open(ctx, dir, "payments.db", migrations)
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	return &SQLiteStore{db: db}, nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }

// Ping checks the database, for a readiness check.
func (s *SQLiteStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

const chargeCols = `id, reference, amount_cents, card_last4, status, decline_code`

func scanCharge(row interface{ Scan(...any) error }) (Charge, error) {
	var c Charge
	err := row.Scan(&c.ID, &c.Reference, &c.AmountCents, &c.CardLast4, &c.Status, &c.DeclineCode)
	if errors.Is(err, sql.ErrNoRows) {
		return Charge{}, ErrNotFound
	}
	return c, err
}

// Create implements Store.
func (s *SQLiteStore) Create(ctx context.Context, c Charge) (Charge, bool, error) {
	now := time.Now().UnixMilli()
	res, err := s.db.ExecContext(ctx, `INSERT INTO charges (`+chargeCols+`, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (reference) DO NOTHING`,
		c.ID, c.Reference, c.AmountCents, c.CardLast4, c.Status, c.DeclineCode, now, now)
	if err != nil {
		return Charge{}, false, fmt.Errorf("payments: charge: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return c, true, nil
	}
	old, err := scanCharge(s.db.QueryRowContext(ctx, `SELECT `+chargeCols+` FROM charges WHERE reference = ?`, c.Reference))
	if err != nil {
		return Charge{}, false, fmt.Errorf("payments: charge: %w", err)
	}
	if old.Status == Voided {
		return Charge{}, false, ErrVoided
	}
	return old, false, nil
}

// ByID implements Store.
func (s *SQLiteStore) ByID(ctx context.Context, id string) (Charge, error) {
	c, err := scanCharge(s.db.QueryRowContext(ctx, `SELECT `+chargeCols+` FROM charges WHERE id = ?`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Charge{}, fmt.Errorf("payments: read: %w", err)
	}
	return c, err
}

// Refund implements Store: the conditional UPDATE decides who refunds.
func (s *SQLiteStore) Refund(ctx context.Context, reference string) (Charge, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Charge{}, false, fmt.Errorf("payments: refund: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UnixMilli()
	c, err := scanCharge(tx.QueryRowContext(ctx, `UPDATE charges SET status = 'refunded', updated_at = ?
		WHERE reference = ? AND status = 'captured' RETURNING `+chargeCols, now, reference))
	changed := err == nil
	if errors.Is(err, ErrNotFound) {
		c, err = scanCharge(tx.QueryRowContext(ctx, `SELECT `+chargeCols+` FROM charges WHERE reference = ?`, reference))
	}
	if errors.Is(err, ErrNotFound) {
		c = Charge{ID: "void_" + reference, Reference: reference, Status: Voided}
		_, err = tx.ExecContext(ctx, `INSERT INTO charges (`+chargeCols+`, created_at, updated_at)
			VALUES (?, ?, 0, '', 'voided', '', ?, ?)`, c.ID, reference, now, now)
		changed = true
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return Charge{}, false, fmt.Errorf("payments: refund: %w", err)
	}
	return c, changed, nil
}

// List implements Store.
func (s *SQLiteStore) List(ctx context.Context, since time.Time, after string, limit int) ([]Charge, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+chargeCols+` FROM charges
		WHERE created_at >= ? AND id > ? ORDER BY id LIMIT ?`, since.UnixMilli(), after, limit)
	if err != nil {
		return nil, fmt.Errorf("payments: list: %w", err)
	}
	defer rows.Close()
	cs := []Charge{}
	for rows.Next() {
		c, err := scanCharge(rows)
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
