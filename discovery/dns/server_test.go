package dns_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/pier-go/pier/discovery/dns"
)

// maxUDP is the largest answer sent over UDP: the EDNS0 size the Go resolver
// asks for. Larger answers are truncated, and the resolver asks again over TCP.
const maxUDP = 1232

// mode is how a dnsServer answers.
type mode int

const (
	answer   mode = iota // from the zone
	servFail             // SERVFAIL to every query
	silent               // no answer at all
)

// srvTarget is one SRV record.
type srvTarget struct {
	target string
	port   uint16
}

// dnsServer is an authoritative DNS server on loopback, over UDP and TCP, with
// a zone that tests change as it runs. Names are kept lower-case and rooted.
// A name in the zone answers NOERROR with its records of the type asked (maybe
// none); any other name answers NXDOMAIN.
type dnsServer struct {
	udp net.PacketConn
	tcp net.Listener
	wg  sync.WaitGroup

	mu      sync.Mutex
	srv     map[string][]srvTarget
	ips     map[string][]netip.Addr
	mode    mode
	queried map[string]bool // "TYPE name", as asked
	tcpSeen int             // queries over TCP
	conns   map[net.Conn]bool
	closed  bool
}

// newServer starts a dnsServer that stops when the test ends.
func newServer(tb testing.TB) *dnsServer {
	tb.Helper()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = udp.Close()
		tb.Fatal(err)
	}
	s := &dnsServer{
		udp: udp, tcp: tcp,
		srv: make(map[string][]srvTarget), ips: make(map[string][]netip.Addr),
		queried: make(map[string]bool), conns: make(map[net.Conn]bool),
	}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	tb.Cleanup(s.close)
	return s
}

// resolver returns a Go resolver that sends every query to s, whatever
// resolv.conf says, through the dial of the package's default resolver.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo:     true,
		StrictErrors: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			addr := s.udp.LocalAddr().String()
			if strings.HasPrefix(network, "tcp") {
				addr = s.tcp.Addr().String()
			}
			return dns.DialContext(ctx, network, addr)
		},
	}
}

func (s *dnsServer) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.udp.Close()
	_ = s.tcp.Close()
	s.wg.Wait()
}

// setSRV sets the SRV records of name; none removes them.
func (s *dnsServer) setSRV(name string, targets ...srvTarget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(targets) == 0 {
		delete(s.srv, canonical(name))
		return
	}
	s.srv[canonical(name)] = targets
}

// setIPs sets the A and AAAA records of name; none removes them.
func (s *dnsServer) setIPs(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ips) == 0 {
		delete(s.ips, canonical(name))
		return
	}
	addrs := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		addrs[i] = netip.MustParseAddr(ip)
	}
	s.ips[canonical(name)] = addrs
}

// replace sets the whole zone.
func (s *dnsServer) replace(srv map[string][]srvTarget, ips map[string][]netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv, s.ips = make(map[string][]srvTarget), make(map[string][]netip.Addr)
	for name, t := range srv {
		s.srv[canonical(name)] = t
	}
	for name, a := range ips {
		s.ips[canonical(name)] = a
	}
}

func (s *dnsServer) setMode(m mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}

// wasQueried reports whether the server was asked for records of type typ
// ("SRV", "A", "AAAA") of name, exactly (rooted, case as sent).
func (s *dnsServer) wasQueried(typ, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queried[typ+" "+name]
}

// queries returns every "TYPE name" asked so far.
func (s *dnsServer) queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for q := range s.queried {
		out = append(out, q)
	}
	return out
}

func (s *dnsServer) tcpQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpSeen
}

func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (s *dnsServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if resp := s.answer(buf[:n], false); resp != nil {
			_, _ = s.udp.WriteTo(resp, from)
		}
	}
}

func (s *dnsServer) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// serveConn answers the length-prefixed queries of one TCP connection.
func (s *dnsServer) serveConn(c net.Conn) {
	var size [2]byte
	for {
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp := s.answer(msg, true)
		if resp == nil {
			continue
		}
		if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(resp)))); err != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// answer returns the response to the query msg, or nil for none.
func (s *dnsServer) answer(msg []byte, overTCP bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := canonical(q.Name.String())

	s.mu.Lock()
	s.queried[strings.TrimPrefix(q.Type.String(), "Type")+" "+q.Name.String()] = true
	if overTCP {
		s.tcpSeen++
	}
	m, srv, ips := s.mode, s.srv[name], s.ips[name]
	_, exists := s.srv[name]
	if _, ok := s.ips[name]; ok {
		exists = true
	}
	s.mu.Unlock()

	if m == silent {
		return nil
	}
	resp := dnsmessage.Message{
		Header: dnsmessage.Header{
			ID: h.ID, Response: true, Authoritative: true,
			RecursionDesired: h.RecursionDesired, RecursionAvailable: true,
		},
		Questions: []dnsmessage.Question{q},
	}
	switch {
	case m == servFail:
		resp.Header.RCode = dnsmessage.RCodeServerFailure
	case !exists:
		resp.Header.RCode = dnsmessage.RCodeNameError
	default:
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}
		switch q.Type {
		case dnsmessage.TypeSRV:
			for _, t := range srv {
				resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.SRVResource{
					Weight: 10, Port: t.port, Target: dnsmessage.MustNewName(canonical(t.target)),
				}})
			}
		case dnsmessage.TypeA:
			for _, ip := range ips {
				if ip.Is4() {
					resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AResource{A: ip.As4()}})
				}
			}
		case dnsmessage.TypeAAAA:
			for _, ip := range ips {
				if ip.Is6() {
					resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AAAAResource{AAAA: ip.As16()}})
				}
			}
		}
	}
	out, err := resp.Pack()
	if err != nil {
		panic(err) // a bug in the test server
	}
	if !overTCP && len(out) > maxUDP {
		resp.Header.Truncated = true
		resp.Answers = nil
		if out, err = resp.Pack(); err != nil {
			panic(err)
		}
	}
	return out
}
