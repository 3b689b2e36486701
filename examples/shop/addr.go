package shop

import "net"

// Addr returns the address the named service (Users, Products, Payments,
// Orders or Gateway) listens on while Run is serving, and false when it is
// not running. Only the gateway's routes are public; the others are for
// tools that read a service's own API, such as the load generator reading
// the payments service's books.
func (s *Shop) Addr(name string) (net.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.running[name]
	if r == nil {
		return nil, false
	}
	return r.svc.Addr(), true
}
