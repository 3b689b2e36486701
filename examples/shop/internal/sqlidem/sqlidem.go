package sqlidem

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pier-go/pier/examples/shop/internal/idemwait"
	"github.com/pier-go/pier/idempotency"
)

// Schema is the migration that creates the table the store uses. Add it to the
// service's migrations.
const Schema = `
CREATE TABLE idempotency_keys (
	key          TEXT PRIMARY KEY,
	fingerprint  TEXT NOT NULL,
	token        TEXT,               -- set while a request holds the claim
	lease_until  INTEGER,            -- unix ms, while claimed
	status       INTEGER,            -- the kept answer, once completed
	header       TEXT,
	body         BLOB,
	completed_at INTEGER             -- unix ms
);
CREATE INDEX idempotency_keys_completed ON idempotency_keys (completed_at);
`

// Store is an [idempotency.Store] over a SQLite table (see Schema).
// Each method is one transaction: Claim is INSERT-or-take-over-an-expired-row
// then SELECT, Complete and Release are UPDATE or DELETE ... WHERE token = ?,
// the compare-and-set the interface asks for.
//
// Within one process the store also hands out a Changed channel for keys in
// progress, closed when their claim ends, so that waiting repeats wake at once;
// a claim held by another process is noticed by the middleware's polling.
// It is safe for concurrent use.
type Store struct {
	db        *sql.DB
	retention time.Duration
	now       func() time.Time
	waiters   idemwait.Waiters
}

// New returns a store on db, whose schema must include Schema. A retention
// <= 0 means [idempotency.DefaultRetention], 24 h.
func New(db *sql.DB, retention time.Duration) (*Store, error) {
	return NewWithClock(db, retention, time.Now)
}

// NewWithClock is New with the clock leases and retention are measured on.
func NewWithClock(db *sql.DB, retention time.Duration, now func() time.Time) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlidem: nil database")
	}
	if now == nil {
		return nil, errors.New("sqlidem: nil clock")
	}
	if retention <= 0 {
		retention = idempotency.DefaultRetention
	}
	return &Store{db: db, retention: retention, now: now}, nil
}

// Claim implements the library's idempotency store.
func (s *Store) Claim(ctx context.Context, key, fingerprint string, lease time.Duration) (idempotency.Record, error) {
	if lease <= 0 {
		lease = idempotency.DefaultLease
	}
	now := s.now().UnixMilli()
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one claimer at a time
	if err != nil {
		return idempotency.Record{}, fmt.Errorf("sqlidem: claim: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var (
		fp, header            sql.NullString
		token                 sql.NullString
		leaseUntil, completed sql.NullInt64
		status                sql.NullInt64
		body                  []byte
	)
	err = tx.QueryRowContext(ctx, `SELECT fingerprint, token, lease_until, status, header, body, completed_at
		FROM idempotency_keys WHERE key = ?`, key).Scan(&fp, &token, &leaseUntil, &status, &header, &body, &completed)
	free := errors.Is(err, sql.ErrNoRows)
	if err != nil && !free {
		return idempotency.Record{}, fmt.Errorf("sqlidem: claim: %w", err)
	}
	if !free {
		switch {
		case status.Valid: // completed
			free = completed.Int64 < now-s.retention.Milliseconds()
		default: // in progress
			free = leaseUntil.Int64 < now
		}
	}
	if !free {
		rec := idempotency.Record{Fingerprint: fp.String}
		if status.Valid {
			rec.Response = &idempotency.Response{Status: int(status.Int64), Body: body, Header: http.Header{}}
			if err := json.Unmarshal([]byte(header.String), &rec.Response.Header); err != nil {
				return idempotency.Record{}, fmt.Errorf("sqlidem: claim: stored header: %w", err)
			}
			s.waiters.Wake(key) // completed by another process: nobody else closes it
		} else {
			rec.Changed = s.waiters.Chan(key)
		}
		return rec, nil
	}
	tok := rand.Text()
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, token, lease_until)
		VALUES (?, ?, ?, ?)`, key, fingerprint, tok, now+lease.Milliseconds()); err != nil {
		return idempotency.Record{}, fmt.Errorf("sqlidem: claim: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return idempotency.Record{}, fmt.Errorf("sqlidem: claim: %w", err)
	}
	s.waiters.Wake(key) // a lapsed claim's waiters: the key is taken now
	return idempotency.Record{Token: tok, Fingerprint: fingerprint}, nil
}

// Complete implements the library's idempotency store. It also drops the keys
// whose retention has run out.
func (s *Store) Complete(ctx context.Context, key, token string, resp *idempotency.Response) error {
	header, err := json.Marshal(resp.Header)
	if err != nil {
		return fmt.Errorf("sqlidem: complete: %w", err)
	}
	now := s.now().UnixMilli()
	res, err := s.db.ExecContext(ctx, `UPDATE idempotency_keys
		SET token = NULL, lease_until = NULL, status = ?, header = ?, body = ?, completed_at = ?
		WHERE key = ? AND token = ?`, resp.Status, string(header), resp.Body, now, key, token)
	if err != nil {
		return fmt.Errorf("sqlidem: complete: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return idempotency.ErrClaimLost
	}
	s.waiters.Wake(key)
	if _, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE completed_at < ?`,
		now-s.retention.Milliseconds()); err != nil {
		return fmt.Errorf("sqlidem: purge: %w", err)
	}
	return nil
}

// Release implements the library's idempotency store.
func (s *Store) Release(ctx context.Context, key, token string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE key = ? AND token = ?`, key, token)
	if err != nil {
		return fmt.Errorf("sqlidem: release: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return idempotency.ErrClaimLost
	}
	s.waiters.Wake(key)
	return nil
}
