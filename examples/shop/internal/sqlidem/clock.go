package sqlidem

import (
	"database/sql"
	"errors"
	"time"
)

// NewWithClock is New with the clock leases and retention are measured on.
func NewWithClock(db *sql.DB, retention time.Duration, now func() time.Time) (*Store, error) {
	if now == nil {
		return nil, errors.New("sqlidem: nil clock")
	}
	s, err := New(db, retention)
	if err != nil {
		return nil, err
	}
	s.now = now
	return s, nil
}
