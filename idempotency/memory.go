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
// dropped when a Claim finds them (the oldest first).
//
// Claims in progress are never dropped to make room: dropping one would wake
// the requests that wait for it, and the next would run the handler beside the
// first. They have a bound of their own ([WithMaxInProgress]); past it, or
// when the claims in progress alone fill the byte bound, Claim returns
// [ErrFull], which [Middleware] answers with 503 and Retry-After. When the
// store holds more keys or bytes than its bounds, it drops completed answers,
// the least recently written first; a dropped answer runs its handler again
// on the next repeat. Size the bounds for your rate of keyed requests times
// the retention.
//
// Bytes are counted as held, not as sent: a kept body counts its capacity,
// headers count their strings and the slices and map slots that hold them,
// and every key a fixed allowance for the entry. An answer that does not fit
// beside the claims in progress, even with every other answer dropped, is not
// kept: Complete then drops the key, as Release would.
//
// Claim never blocks and ignores its context. Records returned for keys in
// progress carry a Changed channel; a claim that ends (completed, released,
// or taken over once its lease has run out) closes it, and its holder's
// Complete then returns [ErrClaimLost] if the key was taken over.
//
// A MemoryStore is safe for concurrent use. It needs no Close.
type MemoryStore struct {
	maxKeys       int
	maxInProgress int
	maxBytes      int64
	retention     time.Duration
	now           func() time.Time // tests set a clock of their own

	mu      sync.Mutex
	entries map[string]*memoryEntry
	claims  memoryList // in progress, in the order they were claimed
	done    memoryList // completed, in the order they were completed
	bytes   int64      // of both lists
	seq     uint64     // the last token handed out
}

// memoryList is a doubly linked list of entries, oldest first.
type memoryList struct {
	head, tail *memoryEntry
	n          int
	bytes      int64
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
	maxKeys       int
	maxInProgress int
	maxBytes      int64
	retention     time.Duration
}

// WithMaxKeys sets the most keys the store holds, in progress or
// completed. The default is [DefaultMaxKeys], 10,000; 0 keeps it and a
// negative n is an error.
func WithMaxKeys(n int) MemoryOption {
	return func(c *memoryConfig) { c.maxKeys = n }
}

// WithMaxInProgress sets the most claims the store holds in progress at
// once: keyed requests whose handlers run, here or on the instances that
// share the store. A Claim past it returns [ErrFull], which [Middleware]
// answers with 503 and Retry-After. Claims in progress are never dropped to
// make room, so this bound, kept below the max keys, also bounds how many
// completed answers a burst of new keys can push out. The default is
// [DefaultMaxInProgress], 1,000, or the max keys when that is lower; 0 keeps
// it, and a negative n or one above the max keys is an error.
func WithMaxInProgress(n int) MemoryOption {
	return func(c *memoryConfig) { c.maxInProgress = n }
}

// WithMaxBytes sets the most bytes the store holds: kept bodies (by
// capacity), headers and keys, plus an allowance per key for the entry that
// holds them. Counting keys alone would let 10,000 answers of 1 MiB take
// 10 GiB. The default is [DefaultMaxBytes], 64 MiB; 0 keeps it and a negative
// n is an error.
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
// error for a nil option, a negative bound, or a max in progress above the
// max keys.
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
	case c.maxInProgress < 0:
		return nil, fmt.Errorf("idempotency: negative max in progress %d", c.maxInProgress)
	case c.maxBytes < 0:
		return nil, fmt.Errorf("idempotency: negative max bytes %d", c.maxBytes)
	case c.retention < 0:
		return nil, fmt.Errorf("idempotency: negative retention %v", c.retention)
	}
	maxKeys := cmp.Or(c.maxKeys, DefaultMaxKeys)
	if c.maxInProgress > maxKeys {
		return nil, fmt.Errorf("idempotency: max in progress %d above max keys %d", c.maxInProgress, maxKeys)
	}
	return &MemoryStore{
		maxKeys:       maxKeys,
		maxInProgress: cmp.Or(c.maxInProgress, min(DefaultMaxInProgress, maxKeys)),
		maxBytes:      cmp.Or(c.maxBytes, DefaultMaxBytes),
		retention:     cmp.Or(c.retention, DefaultRetention),
		now:           time.Now,
		entries:       make(map[string]*memoryEntry),
	}, nil
}

// What the store counts for memory beyond the bytes of strings and bodies.
const (
	// memoryEntryOverhead is for an entry: the entry itself (about 130
	// bytes), its map slot and the key's string header, and, once completed,
	// the Response and its header map.
	memoryEntryOverhead = 256
	// headerFieldOverhead is for each field of a kept header: its map slot,
	// the name's string header and the values' slice header.
	headerFieldOverhead = 48
	// stringHeader is the size of a string header, for each header value.
	stringHeader = 16
)

// claimSize is what an entry in progress holds.
func claimSize(key, fingerprint, token string) int64 {
	return int64(len(key)+len(fingerprint)+len(token)) + memoryEntryOverhead
}

// answerSize is what a completed entry holds: the body counts its capacity,
// which is what stays allocated, whatever its length.
func answerSize(key, fingerprint string, resp *Response) int64 {
	n := int64(len(key)+len(fingerprint)+cap(resp.Body)) + memoryEntryOverhead
	for k, v := range resp.Header {
		n += int64(len(k)) + headerFieldOverhead + int64(cap(v))*stringHeader
		for _, x := range v {
			n += int64(len(x))
		}
	}
	return n
}

// Claim implements [Store]. It returns [ErrFull] when the store holds
// as many claims in progress as it may ([WithMaxInProgress]), or when they
// alone fill its byte bound.
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
	token := strconv.FormatUint(s.seq+1, 10)
	size := claimSize(key, fingerprint, token)
	if !s.roomForClaim(size) {
		// Leases differ, so claims that ran out may sit behind one that has
		// not, where expire does not reach them: look through all of them,
		// at most the max in progress, before refusing.
		s.sweepClaims(now)
		if !s.roomForClaim(size) {
			return Record{}, ErrFull
		}
	}
	s.evict(1, size)
	s.seq++
	e := &memoryEntry{key: key, fingerprint: fingerprint, token: token, expires: now.Add(lease), size: size}
	s.entries[key] = e
	s.link(&s.claims, e)
	return Record{Token: e.token, Fingerprint: fingerprint}, nil
}

// roomForClaim reports whether a claim of size fits beside the claims in
// progress, once completed answers are dropped if need be.
func (s *MemoryStore) roomForClaim(size int64) bool {
	return s.claims.n < s.maxInProgress && s.claims.n < s.maxKeys && s.claims.bytes+size <= s.maxBytes
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
	size := answerSize(key, e.fingerprint, resp)
	s.unlink(&s.claims, e)
	if s.claims.bytes+size > s.maxBytes {
		// It fits beside the claims in progress only if they end: not kept.
		delete(s.entries, key)
		s.wake(e)
		return nil
	}
	s.evict(0, size)
	e.size, e.token, e.resp = size, "", resp
	e.expires = s.now().Add(s.retention)
	s.link(&s.done, e)
	s.wake(e)
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

// expire drops expired entries from the front of both lists. Entries behind an
// unexpired one wait for it, for their own key's next Claim, for eviction or,
// claims in progress, for sweepClaims.
func (s *MemoryStore) expire(now time.Time) {
	for _, l := range [...]*memoryList{&s.claims, &s.done} {
		for l.head != nil && !now.Before(l.head.expires) {
			s.remove(l.head)
		}
	}
}

// sweepClaims drops every claim in progress whose lease has run out.
func (s *MemoryStore) sweepClaims(now time.Time) {
	for e := s.claims.head; e != nil; {
		next := e.next
		if !now.Before(e.expires) {
			s.remove(e)
		}
		e = next
	}
}

// evict drops completed answers, the least recently written first, until
// keys more keys and size more bytes fit. It never drops a claim in progress.
func (s *MemoryStore) evict(keys int, size int64) {
	for s.done.head != nil && (len(s.entries)+keys > s.maxKeys || s.bytes+size > s.maxBytes) {
		s.remove(s.done.head)
	}
}

// list returns the list that holds e.
func (s *MemoryStore) list(e *memoryEntry) *memoryList {
	if e.resp == nil {
		return &s.claims
	}
	return &s.done
}

func (s *MemoryStore) remove(e *memoryEntry) {
	s.unlink(s.list(e), e)
	delete(s.entries, e.key)
	s.wake(e)
}

// link appends e to l and counts it.
func (s *MemoryStore) link(l *memoryList, e *memoryEntry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
	l.n++
	l.bytes += e.size
	s.bytes += e.size
}

// unlink takes e out of l and out of the counts.
func (s *MemoryStore) unlink(l *memoryList, e *memoryEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.n--
	l.bytes -= e.size
	s.bytes -= e.size
}

// wake closes e's channel, if a waiter asked for one.
func (s *MemoryStore) wake(e *memoryEntry) {
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}
