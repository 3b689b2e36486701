package idemwait

import "sync"

// Waiters holds one channel per key that someone waits on. The zero value is
// ready to use; it is safe for concurrent use and must not be copied after
// first use.
type Waiters struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

// Chan returns the channel for key, made on first call, which Wake closes.
func (w *Waiters) Chan(key string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.ch[key]
	if !ok {
		if w.ch == nil {
			w.ch = map[string]chan struct{}{}
		}
		ch = make(chan struct{})
		w.ch[key] = ch
	}
	return ch
}

// Wake closes and forgets the channel for key, if Chan made one: every
// holder of it wakes, and the next Chan makes a new one.
func (w *Waiters) Wake(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.ch[key]; ok {
		close(ch)
		delete(w.ch, key)
	}
}
