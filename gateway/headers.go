package gateway

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
)

// identityPrefixes and identityNames are the headers that tell a server who
// the caller is or where the request came from. A client must never set them
// through the gateway: the gateway drops every incoming one, whatever its case
// and whether it is spelled with underscores (X_Forwarded_For, which some
// servers and CGI-style frameworks fold into the same name; CVE-2021-32813,
// CVE-2024-45410), and sets its own. Compared in lower case with '_' read as
// '-'.
var (
	identityPrefixes = []string{"x-user-", "x-forwarded-", "x-original-", "x-auth-", "x-remote-"}
	identityNames    = []string{"x-forwarded", "forwarded", "x-real-ip", "x-rewrite-url", "x-client-ip",
		"true-client-ip", "x-cluster-client-ip", "cf-connecting-ip", "fastly-client-ip",
		"x-user", "x-userid", "x-authenticated-user", "x-remote-user", "remote-user"}
)

// isIdentityHeader reports whether the header name is one the gateway drops
// and owns.
func isIdentityHeader(name string) bool {
	if len(name) < 5 {
		return false
	}
	for _, p := range identityPrefixes {
		if len(name) > len(p) && foldEqual(name[:len(p)], p) {
			return true
		}
	}
	for _, n := range identityNames {
		if len(name) == len(n) && foldEqual(name, n) {
			return true
		}
	}
	return false
}

// foldEqual reports whether s equals lower, a lower-case ASCII string, without
// regard to case and reading '_' in s as '-'.
func foldEqual(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

var errHeaderValue = errors.New("a header holds a CR, LF or NUL character")

// checkHeaders refuses header names or values holding CR, LF or NUL, which
// would split or truncate headers downstream. net/http's server refuses most
// of them already; the gateway may also be called in process.
func checkHeaders(h http.Header) error {
	for k, vv := range h {
		if strings.ContainsAny(k, "\r\n\x00") {
			return errHeaderValue
		}
		for _, v := range vv {
			for i := 0; i < len(v); i++ {
				if c := v[i]; c == '\r' || c == '\n' || c == 0 {
					return errHeaderValue
				}
			}
		}
	}
	return nil
}

// forwarding is what the gateway knows of where a request came from.
type forwarding struct {
	client netip.Addr // the client's address, after trusted proxies
	peer   netip.Addr // the address the connection came from
	chain  string     // X-Forwarded-For to send on
	proto  string     // "http" or "https"
	host   string     // the host the client asked for
	prior  []string   // Forwarded elements from trusted proxies
}

// trusted holds the networks whose forwarding headers the gateway believes.
type trusted []netip.Prefix

func (t trusted) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardingOf works out where r came from. Incoming X-Forwarded-For,
// X-Forwarded-Proto, X-Forwarded-Host and Forwarded are believed only when the
// connection comes from a trusted proxy; the client is then the rightmost
// address in X-Forwarded-For that is not a trusted proxy (Spring Cloud
// Gateway CVE-2025-41235 trusted any sender).
func (t trusted) forwardingOf(r *http.Request) forwarding {
	var f forwarding
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		f.peer = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		f.peer = a.Unmap()
	}
	f.client = f.peer
	f.proto = "http"
	if r.TLS != nil {
		f.proto = "https"
	}
	f.host = r.Host
	peerText := ""
	if f.peer.IsValid() {
		peerText = f.peer.String()
	}
	f.chain = peerText
	if len(t) == 0 || !f.peer.IsValid() || !t.contains(f.peer) {
		return f
	}
	var hops []string
	for _, v := range headerValues(r.Header, "X-Forwarded-For") {
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	valid := hops[:0:0]
	for _, h := range hops {
		if a, err := netip.ParseAddr(h); err == nil {
			valid = append(valid, a.Unmap().String())
		} else {
			valid = valid[:0] // unparsable: believe nothing left of it
		}
	}
	for i := len(valid) - 1; i >= 0; i-- {
		a := netip.MustParseAddr(valid[i])
		f.client = a
		if !t.contains(a) {
			break
		}
	}
	if len(valid) > 0 {
		f.chain = strings.Join(valid, ", ") + ", " + peerText
	}
	if p := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
		f.proto = p
	}
	if h := strings.TrimSpace(r.Header.Get("X-Forwarded-Host")); h != "" && validHost(h) {
		f.host = h
	}
	for _, v := range headerValues(r.Header, "Forwarded") {
		for el := range strings.SplitSeq(v, ",") {
			if el = strings.TrimSpace(el); el != "" && validForwardedElement(el) {
				f.prior = append(f.prior, el)
			}
		}
	}
	return f
}

// headerValues returns the values of the header named canonical. net/http's
// server canonicalises the names of the headers read here.
func headerValues(h http.Header, canonical string) []string {
	return h[canonical]
}

// validHost reports whether h can be sent as a host: letters, digits and the
// characters of a host and port.
func validHost(h string) bool {
	if len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-.:[]_", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validForwardedElement reports whether el looks like an RFC 7239
// forwarded-element: pairs of token=value, with no control characters.
func validForwardedElement(el string) bool {
	if len(el) > 512 {
		return false
	}
	for pair := range strings.SplitSeq(el, ";") {
		k, _, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !validHeaderName(k) {
			return false
		}
	}
	for i := 0; i < len(el); i++ {
		if el[i] < 0x20 || el[i] == 0x7f {
			return false
		}
	}
	return true
}

// forwardedElement returns the RFC 7239 element the gateway adds.
func (f *forwarding) forwardedElement() string {
	var b strings.Builder
	b.Grow(64 + len(f.host))
	b.WriteString("for=")
	var addr [64]byte
	switch {
	case !f.peer.IsValid():
		b.WriteString("unknown")
	case f.peer.Is6():
		b.WriteString(`"[`)
		b.Write(f.peer.AppendTo(addr[:0]))
		b.WriteString(`]"`)
	default:
		b.Write(f.peer.AppendTo(addr[:0]))
	}
	b.WriteString(";proto=")
	b.WriteString(f.proto)
	if f.host != "" {
		b.WriteString(`;host="`)
		b.WriteString(f.host)
		b.WriteByte('"')
	}
	return b.String()
}

// setForwarding sets the forwarding headers the gateway owns on out, and the
// request ID id, after every incoming identity header was dropped. The values
// share one backing array, each slice capped at its one value, so that an
// append to one copies it rather than overwrite the next.
func (f *forwarding) setForwarding(out http.Header, id string) {
	vals := make([]string, 0, 6)
	set := func(k, v string) {
		vals = append(vals, v)
		out[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if f.chain != "" {
		set("X-Forwarded-For", f.chain)
	}
	set("X-Forwarded-Proto", f.proto)
	if f.host != "" {
		set("X-Forwarded-Host", f.host)
	}
	el := f.forwardedElement()
	if len(f.prior) > 0 {
		el = strings.Join(f.prior, ", ") + ", " + el
	}
	set("Forwarded", el)
	switch {
	case f.client == f.peer && f.chain != "" && !strings.Contains(f.chain, ","):
		set("X-Real-Ip", f.chain) // the peer's address, already formatted
	case f.client.IsValid():
		set("X-Real-Ip", f.client.String())
	}
	set("X-Request-Id", id)
}

// dropIdentity removes every identity header from h.
func dropIdentity(h http.Header) {
	for k := range h {
		if isIdentityHeader(k) {
			delete(h, k)
		}
	}
}
