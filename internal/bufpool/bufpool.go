// Package bufpool lends httputil.ReverseProxy the buffers it copies response
// bodies through. Without a pool, ReverseProxy allocates 32 KiB for every
// response it copies: most of the bytes a proxied request allocates, and so
// most of the garbage collector's work under load.
package bufpool

import "sync"

// Size is the size of the buffers: httputil.ReverseProxy's own, when it has
// no pool.
const Size = 32 << 10

// Pool is an httputil.BufferPool of Size-byte buffers. It keeps arrays, not
// slices, so that returning a buffer allocates nothing. The zero value is
// ready to use, and it is safe for concurrent use.
type Pool struct{ pool sync.Pool }

// Get returns a buffer of Size bytes.
func (p *Pool) Get() []byte {
	if b, ok := p.pool.Get().(*[Size]byte); ok {
		return b[:]
	}
	return new([Size]byte)[:]
}

// Put takes back a buffer that Get returned; one of another capacity is
// dropped.
func (p *Pool) Put(b []byte) {
	if cap(b) != Size {
		return
	}
	p.pool.Put((*[Size]byte)(b[:Size]))
}
