package gateway

import "sync"

// copyBufferSize is the size of the buffers the proxy copies response bodies
// through: httputil.ReverseProxy's own, when it has no pool.
const copyBufferSize = 32 << 10

// bufferPool lends httputil.ReverseProxy the buffers it copies response
// bodies through. Without one, it allocates 32 KiB for every response: most
// of the bytes a proxied request allocates, and so most of the garbage
// collector's work under load. The pool keeps arrays, not slices, so that
// returning a buffer allocates nothing.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

// Get returns a buffer of copyBufferSize bytes.
func (p *bufferPool) Get() []byte { return p.pool.Get().(*[copyBufferSize]byte)[:] }

// Put takes back a buffer that Get returned; any other is dropped.
func (p *bufferPool) Put(b []byte) {
	if cap(b) != copyBufferSize {
		return
	}
	p.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
}
