package idempotency

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// MemoryStore is a [Store] in the memory of one process,
// for one instance or several in one process. Make it with
// [NewMemoryStore].
//
// It is bounded in time and size and runs no goroutine: expired keys are
// dropped when a Claim or Complete finds them (the oldest first), and when the
// store holds more keys or bytes than its bounds, the least recently written
// keys are dropped. A claim that is dropped (its lease ran out, or the bounds
// forced it out) wakes its waiters, and its holder's Complete then returns
// [ErrClaimLost]; a dropped completed key runs its handler again on
// the next repeat. Size the bounds for your rate of keyed requests times the
// retention.
//
// Claim never blocks and ignores its context. A response larger than the byte
// bound is not kept: Complete then drops the key, as Release would. Records
// returned for keys in progress carry a Changed channel.
//
// A MemoryStore is safe for concurrent use. It needs no Close.
type MemoryStore struct {
	maxKeys   int
	maxBytes  int64
	retention time.Duration
	now       func() time.Time // tests set a clock of their own

	mu         sync.Mutex
	entries    map[string]*memoryEntry
	head, tail *memoryEntry // least recently written first
	bytes      int64
	seq        uint64 // the last token handed out
}

type memoryEntry struct {
	key, fingerprint string
	token            string        // set while in progress
	resp             *Response     // set once completed
	expires          time.Time     // the lease's end, then the retention's
	changed          chan struct{} // made for the first waiter, closed when the claim ends
	size             int64
	prev, next       *memoryEntry
}

// MemoryOption configures [NewMemoryStore].
type MemoryOption func(*memoryConfig)

type memoryConfig struct {
	maxKeys   int
	maxBytes  int64
	retention time.Duration
}

// WithMaxKeys sets the most keys the store holds, in progress or
// completed. The default is [DefaultMaxKeys], 10,000; 0 keeps it and a
// negative n is an error.
func WithMaxKeys(n int) MemoryOption {
	return func(c *memoryConfig) { c.maxKeys = n }
}

// WithMaxBytes sets the most bytes the store holds: kept bodies,
// headers and keys, plus a small allowance per key. Counting keys alone would
// let 10,000 answers of 1 MiB take 10 GiB. The default is
// [DefaultMaxBytes], 64 MiB; 0 keeps it and a negative n is an error.
func WithMaxBytes(n int64) MemoryOption {
	return func(c *memoryConfig) { c.maxBytes = n }
}

// WithRetention sets how long a completed key is kept, counted from
// its completion. The default is [DefaultRetention], 24 h; 0 keeps it and a
// negative d is an error.
func WithRetention(d time.Duration) MemoryOption {
	return func(c *memoryConfig) { c.retention = d }
}

// NewMemoryStore returns an empty store with the given bounds. It returns an
// error for a nil option or a negative bound.
func NewMemoryStore(opts ...MemoryOption) (*MemoryStore, error) {
	var c memoryConfig
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("idempotency: nil memory store option")
		}
		o(&c)
	}
	switch {
	case c.maxKeys < 0:
		return nil, fmt.Errorf("idempotency: negative max keys %d", c.maxKeys)
	case c.maxBytes < 0:
		return nil, fmt.Errorf("idempotency: negative max bytes %d", c.maxBytes)
	case c.retention < 0:
		return nil, fmt.Errorf("idempotency: negative retention %v", c.retention)
	}
	return &MemoryStore{
		maxKeys:   cmp.Or(c.maxKeys, DefaultMaxKeys),
		maxBytes:  cmp.Or(c.maxBytes, DefaultMaxBytes),
		retention: cmp.Or(c.retention, DefaultRetention),
		now:       time.Now,
		entries:   make(map[string]*memoryEntry),
	}, nil
}

// memoryEntryOverhead is what the store counts for an entry beyond its
// strings and response: the entry, its map slot and the response's fields.
const memoryEntryOverhead = 256

// Claim implements [Store].
func (s *MemoryStore) Claim(_ context.Context, key, fingerprint string, lease time.Duration) (Record, error) {
	if lease <= 0 {
		lease = DefaultLease
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	if e, ok := s.entries[key]; ok {
		if now.Before(e.expires) {
			rec := Record{Fingerprint: e.fingerprint, Response: e.resp}
			if e.resp == nil {
				if e.changed == nil {
					e.changed = make(chan struct{})
				}
				rec.Changed = e.changed
			}
			return rec, nil
		}
		s.remove(e) // its lease or retention has run out
	}
	s.seq++
	e := &memoryEntry{key: key, fingerprint: fingerprint, token: strconv.FormatUint(s.seq, 10), expires: now.Add(lease)}
	e.size = int64(len(key)+len(fingerprint)+len(e.token)) + memoryEntryOverhead
	s.push(e)
	s.evict()
	return Record{Token: e.token, Fingerprint: fingerprint}, nil
}

// Complete implements [Store]. A claim whose lease has run out can
// still complete while no other request has taken the key.
func (s *MemoryStore) Complete(_ context.Context, key, token string, resp *Response) error {
	if resp == nil {
		return errors.New("idempotency: MemoryStore.Complete: nil response")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok || token == "" || e.token != token {
		return ErrClaimLost
	}
	size := int64(len(key)+len(e.fingerprint)+len(resp.Body)) + memoryEntryOverhead
	for k, v := range resp.Header {
		size += int64(len(k))
		for _, x := range v {
			size += int64(len(x)) + 16 // the string's header
		}
	}
	if size > s.maxBytes {
		s.remove(e) // it would push out everything else
		return nil
	}
	s.unlink(e)
	s.bytes += size - e.size
	e.size, e.token, e.resp = size, "", resp
	e.expires = s.now().Add(s.retention)
	s.link(e)
	s.wake(e)
	s.evict()
	return nil
}

// Release implements [Store].
func (s *MemoryStore) Release(_ context.Context, key, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok || token == "" || e.token != token {
		return ErrClaimLost
	}
	s.remove(e)
	return nil
}

// expire drops expired entries from the front of the list. Entries behind an
// unexpired one wait for it, for their own key's next Claim or for eviction.
func (s *MemoryStore) expire(now time.Time) {
	for s.head != nil && !now.Before(s.head.expires) {
		s.remove(s.head)
	}
}

// evict drops the least recently written entries while the store is too big.
func (s *MemoryStore) evict() {
	for s.head != nil && (len(s.entries) > s.maxKeys || s.bytes > s.maxBytes) {
		s.remove(s.head)
	}
}

func (s *MemoryStore) push(e *memoryEntry) {
	s.entries[e.key] = e
	s.bytes += e.size
	s.link(e)
}

func (s *MemoryStore) remove(e *memoryEntry) {
	s.unlink(e)
	delete(s.entries, e.key)
	s.bytes -= e.size
	s.wake(e)
}

// link appends e to the list.
func (s *MemoryStore) link(e *memoryEntry) {
	e.prev, e.next = s.tail, nil
	if s.tail != nil {
		s.tail.next = e
	} else {
		s.head = e
	}
	s.tail = e
}

func (s *MemoryStore) unlink(e *memoryEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// wake closes e's channel, if a waiter asked for one.
func (s *MemoryStore) wake(e *memoryEntry) {
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}
