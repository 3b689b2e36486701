package pgidem

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pier-go/pier/examples/shop/internal/idemwait"
	"github.com/pier-go/pier/idempotency"
)

// Schema is the migration that creates the table the store uses. Add it to the
// service's migrations (see pgdb.Open).
const Schema = `
CREATE TABLE idempotency_keys (
	key          TEXT PRIMARY KEY,
	fingerprint  TEXT NOT NULL,
	token        TEXT,               -- set while a request holds the claim
	lease_until  BIGINT,             -- unix ms, while claimed
	status       INTEGER,            -- the kept answer, once completed
	header       TEXT,
	body         BYTEA,
	completed_at BIGINT              -- unix ms
);
CREATE INDEX idempotency_keys_completed ON idempotency_keys (completed_at);
`

// Store is an [idempotency.Store] over a PostgreSQL table (see Schema). Every
// method is one statement, a compare-and-set that PostgreSQL's row locks make
// atomic across processes:
//
//   - Claim is INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE the row's
//     lease or retention has run out, RETURNING the token: of any number of
//     concurrent claims of a free key exactly one gets a row back; the others
//     read what the winner wrote.
//   - Complete is UPDATE ... WHERE key = $1 AND token = $2, Release is DELETE
//     ... WHERE key = $1 AND token = $2: a claim that was taken over has
//     another token and changes nothing (idempotency.ErrClaimLost).
//
// Leases and retention are measured on the store's clock (the process's), so
// the instances sharing a database need clocks kept in step (NTP), as leases
// are seconds long.
//
// Within one process the store also hands out a Changed channel for keys in
// progress, closed when their claim ends, so that waiting repeats wake at once;
// a claim held by another process is noticed by the middleware's polling.
// It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	retention time.Duration
	now       func() time.Time
	waiters   idemwait.Waiters
}

// New returns a store on pool, whose search_path schema must include Schema.
// A retention <= 0 means [idempotency.DefaultRetention], 24 h.
func New(pool *pgxpool.Pool, retention time.Duration) (*Store, error) {
	return NewWithClock(pool, retention, time.Now)
}

// NewWithClock is New with the clock leases and retention are measured on.
func NewWithClock(pool *pgxpool.Pool, retention time.Duration, now func() time.Time) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgidem: nil pool")
	}
	if now == nil {
		return nil, errors.New("pgidem: nil clock")
	}
	if retention <= 0 {
		retention = idempotency.DefaultRetention
	}
	return &Store{pool: pool, retention: retention, now: now}, nil
}

// Claim implements the library's idempotency store.
func (s *Store) Claim(ctx context.Context, key, fingerprint string, lease time.Duration) (idempotency.Record, error) {
	if lease <= 0 {
		lease = idempotency.DefaultLease
	}
	// A key released between our failed claim and our read is free again:
	// claim once more. Three rounds are plenty; each needs another request to
	// claim and release the key in between.
	for range 3 {
		now := s.now().UnixMilli()
		tok := rand.Text()
		var got string
		err := s.pool.QueryRow(ctx, `INSERT INTO idempotency_keys AS k (key, fingerprint, token, lease_until)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, token = excluded.token,
				lease_until = excluded.lease_until, status = NULL, header = NULL, body = NULL, completed_at = NULL
			WHERE (k.status IS NULL AND k.lease_until < $5) OR (k.status IS NOT NULL AND k.completed_at < $6)
			RETURNING token`,
			key, fingerprint, tok, now+lease.Milliseconds(), now, now-s.retention.Milliseconds()).Scan(&got)
		if err == nil {
			s.waiters.Wake(key) // a lapsed claim's waiters: the key is taken now
			return idempotency.Record{Token: got, Fingerprint: fingerprint}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return idempotency.Record{}, fmt.Errorf("pgidem: claim: %w", err)
		}
		rec, found, err := s.read(ctx, key)
		if err != nil {
			return idempotency.Record{}, err
		}
		if found {
			return rec, nil
		}
	}
	return idempotency.Record{}, fmt.Errorf("pgidem: claim %q: the key keeps changing hands", key)
}

// read returns what is kept for key, held by another request.
func (s *Store) read(ctx context.Context, key string) (idempotency.Record, bool, error) {
	var (
		fp     string
		status *int32
		header *string
		body   []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT fingerprint, status, header, body FROM idempotency_keys WHERE key = $1`, key).
		Scan(&fp, &status, &header, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return idempotency.Record{}, false, nil
	}
	if err != nil {
		return idempotency.Record{}, false, fmt.Errorf("pgidem: claim: %w", err)
	}
	rec := idempotency.Record{Fingerprint: fp}
	if status == nil {
		rec.Changed = s.waiters.Chan(key)
		return rec, true, nil
	}
	rec.Response = &idempotency.Response{Status: int(*status), Body: body, Header: http.Header{}}
	if header != nil {
		if err := json.Unmarshal([]byte(*header), &rec.Response.Header); err != nil {
			return idempotency.Record{}, false, fmt.Errorf("pgidem: claim: stored header: %w", err)
		}
	}
	s.waiters.Wake(key) // completed by another process: nobody else closes it
	return rec, true, nil
}

// Complete implements the library's idempotency store. It also drops the keys
// whose retention has run out.
func (s *Store) Complete(ctx context.Context, key, token string, resp *idempotency.Response) error {
	header, err := json.Marshal(resp.Header)
	if err != nil {
		return fmt.Errorf("pgidem: complete: %w", err)
	}
	now := s.now().UnixMilli()
	tag, err := s.pool.Exec(ctx, `UPDATE idempotency_keys
		SET token = NULL, lease_until = NULL, status = $1, header = $2, body = $3, completed_at = $4
		WHERE key = $5 AND token = $6`, resp.Status, string(header), resp.Body, now, key, token)
	if err != nil {
		return fmt.Errorf("pgidem: complete: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return idempotency.ErrClaimLost
	}
	s.waiters.Wake(key)
	if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE completed_at < $1`,
		now-s.retention.Milliseconds()); err != nil {
		return fmt.Errorf("pgidem: purge: %w", err)
	}
	return nil
}

// Release implements the library's idempotency store.
func (s *Store) Release(ctx context.Context, key, token string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE key = $1 AND token = $2`, key, token)
	if err != nil {
		return fmt.Errorf("pgidem: release: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return idempotency.ErrClaimLost
	}
	s.waiters.Wake(key)
	return nil
}
