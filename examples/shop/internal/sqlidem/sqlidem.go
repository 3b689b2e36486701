package sqlidem

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/pier-go/pier/idempotency"
)

// The library's store interface and its types, named once here so that the
// rest of the file does not depend on where they live.
type (
	record   = idempotency.Record
	response = idempotency.Response
)

var errClaimLost = idempotency.ErrClaimLost

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

// DefaultRetention is how long a completed key is kept: 24 h, as Stripe does.
const DefaultRetention = 24 * time.Hour

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

	mu      sync.Mutex
	waiters map[string]chan struct{}
}

// New returns a store on db, whose schema must include Schema. A retention
// <= 0 means DefaultRetention.
func New(db *sql.DB, retention time.Duration) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlidem: nil database")
	}
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Store{db: db, retention: retention, now: time.Now, waiters: map[string]chan struct{}{}}, nil
}

// Claim implements the library's idempotency store.
func (s *Store) Claim(ctx context.Context, key, fingerprint string, lease time.Duration) (record, error) {
	if lease <= 0 {
		lease = idempotency.DefaultLease
	}
	now := s.now().UnixMilli()
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one claimer at a time
	if err != nil {
		return record{}, fmt.Errorf("sqlidem: claim: %w", err)
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
		return record{}, fmt.Errorf("sqlidem: claim: %w", err)
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
		rec := record{Fingerprint: fp.String}
		if status.Valid {
			rec.Response = &response{Status: int(status.Int64), Body: body, Header: http.Header{}}
			if err := json.Unmarshal([]byte(header.String), &rec.Response.Header); err != nil {
				return record{}, fmt.Errorf("sqlidem: claim: stored header: %w", err)
			}
			s.wake(key) // completed by another process: nobody else closes it
		} else {
			rec.Changed = s.waiter(key)
		}
		return rec, nil
	}
	tok := newToken()
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, token, lease_until)
		VALUES (?, ?, ?, ?)`, key, fingerprint, tok, now+lease.Milliseconds()); err != nil {
		return record{}, fmt.Errorf("sqlidem: claim: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return record{}, fmt.Errorf("sqlidem: claim: %w", err)
	}
	s.wake(key) // a lapsed claim's waiters: the key is taken now
	return record{Token: tok, Fingerprint: fingerprint}, nil
}

// Complete implements the library's idempotency store. It also drops the keys
// whose retention has run out.
func (s *Store) Complete(ctx context.Context, key, token string, resp *response) error {
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
		return errClaimLost
	}
	s.wake(key)
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
		return errClaimLost
	}
	s.wake(key)
	return nil
}

func (s *Store) waiter(key string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.waiters[key]
	if !ok {
		ch = make(chan struct{})
		s.waiters[key] = ch
	}
	return ch
}

func (s *Store) wake(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.waiters[key]; ok {
		close(ch)
		delete(s.waiters, key)
	}
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
