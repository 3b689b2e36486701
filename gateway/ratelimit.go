package gateway

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterShards spreads a limiter's keys over this many locks.
const limiterShards = 32

// DefaultMaxKeys is how many keys one rate limiter tracks at most: see
// [WithMaxRateKeys].
const DefaultMaxKeys = 1 << 20

// limiterStore is a token bucket (golang.org/x/time/rate) per key, with
// bounded memory.
//
// Buckets expire by generations: each shard keeps the buckets used in its
// current and its previous period, a period being at least the time an empty
// bucket takes to fill (Burst/Rate). A bucket unused for that long is full,
// exactly as a new one would be, so dropping it loses nothing, and every
// bucket in the previous generation that is not touched again is dropped at
// the next turn. When a shard's current generation reaches its share of
// maxKeys, it turns early: a flood of more distinct keys than maxKeys within
// one period makes the oldest buckets start full again, rather than grow
// without bound.
type limiterStore struct {
	limit   rate.Limit
	burst   int
	period  time.Duration
	perShrd int
	seed    maphash.Seed
	shards  [limiterShards]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	cur     map[string]*rate.Limiter
	prev    map[string]*rate.Limiter
	rotated time.Time
}

func newLimiterStore(perSecond float64, burst, maxKeys int) *limiterStore {
	period := time.Duration(float64(burst) / perSecond * float64(time.Second))
	period = max(period, time.Second)
	s := &limiterStore{limit: rate.Limit(perSecond), burst: burst, period: period,
		perShrd: max(1, maxKeys/limiterShards), seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].cur = make(map[string]*rate.Limiter)
	}
	return s
}

// decision is the outcome of taking a token.
type decision struct {
	ok        bool
	remaining int           // whole tokens left
	retry     time.Duration // until a token is there, when !ok
	reset     time.Duration // until the bucket is full
}

// take takes a token from key's bucket at now.
func (s *limiterStore) take(key []byte, now time.Time) decision {
	sh := &s.shards[maphash.Bytes(s.seed, key)%limiterShards]
	sh.mu.Lock()
	if sh.rotated.IsZero() {
		sh.rotated = now
	}
	if age := now.Sub(sh.rotated); age >= s.period {
		if age >= 2*s.period {
			sh.prev = nil
		} else {
			sh.prev = sh.cur
		}
		sh.cur = make(map[string]*rate.Limiter, len(sh.prev)/2)
		sh.rotated = now
	}
	lim := sh.cur[string(key)]
	if lim == nil {
		if lim = sh.prev[string(key)]; lim != nil {
			delete(sh.prev, string(key))
		} else {
			lim = rate.NewLimiter(s.limit, s.burst)
		}
		if len(sh.cur) >= s.perShrd {
			sh.prev, sh.cur, sh.rotated = sh.cur, make(map[string]*rate.Limiter, s.perShrd/2), now
		}
		sh.cur[string(key)] = lim
	}
	ok := lim.AllowN(now, 1)
	tokens := lim.TokensAt(now)
	sh.mu.Unlock()
	d := decision{ok: ok, remaining: max(0, int(math.Floor(tokens)))}
	if !ok {
		d.retry = time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second))
	}
	d.reset = time.Duration((float64(s.burst) - tokens) / float64(s.limit) * float64(time.Second))
	return d
}

// len returns how many buckets the store holds.
func (s *limiterStore) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.cur) + len(sh.prev)
		sh.mu.Unlock()
	}
	return n
}

// ipKey appends to buf the key of address a: all of an IPv4 address, the /64
// prefix of an IPv6 one.
func ipKey(buf []byte, a netip.Addr) []byte {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return append(append(buf, 'i', '4'), b[:]...)
	}
	if !a.IsValid() {
		return append(buf, 'i', '?')
	}
	b := a.As16()
	return append(append(buf, 'i', '6'), b[:8]...)
}

// peek reports whether key's bucket holds a token at now, without taking it,
// and when not, how long until it will. A key without a bucket has a full one.
func (s *limiterStore) peek(key []byte, now time.Time) (time.Duration, bool) {
	sh := &s.shards[maphash.Bytes(s.seed, key)%limiterShards]
	sh.mu.Lock()
	lim := sh.cur[string(key)]
	if lim == nil {
		lim = sh.prev[string(key)]
	}
	if lim == nil || now.Sub(sh.rotated) >= 2*s.period {
		sh.mu.Unlock()
		return 0, true
	}
	tokens := lim.TokensAt(now)
	sh.mu.Unlock()
	if tokens >= 1 {
		return 0, true
	}
	return time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second)), false
}
