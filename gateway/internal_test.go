package gateway

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestRateLimitMemory100kKeys measures the memory 100k buckets hold: a flood
// of distinct client addresses must stay within a bound. The bound is
// generous; docs/gateway.md quotes the measured figure.
func TestRateLimitMemory100kKeys(t *testing.T) {
	const keys = 100_000
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newLimiterStore(10, 20, DefaultMaxKeys)
	var buf [32]byte
	for i := range keys {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(0x0a000000+i))
		s.take(ipKey(buf[:0], netip.AddrFrom4(a)), now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := s.len(); n != keys {
		t.Fatalf("%d buckets, want %d", n, keys)
	}
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	per := used / keys
	t.Logf("100k keys: %d bytes of heap, %d bytes a key", used, per)
	if used > 64<<20 {
		t.Fatalf("100k keys hold %d bytes, more than the 64 MiB bound", used)
	}
	runtime.KeepAlive(s)
}

// TestRateLimitBucketsExpire: buckets unused for two periods are dropped,
// and a bucket that comes back after a period starts as full as a new one.
func TestRateLimitBucketsExpire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newLimiterStore(1, 2, DefaultMaxKeys) // period 2 s
	var buf [32]byte
	for i := range 1000 {
		s.take(ipKey(buf[:0], netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})), now)
	}
	if n := s.len(); n != 1000 {
		t.Fatalf("%d buckets", n)
	}
	// Two periods later every shard has turned twice on its next use.
	now = now.Add(4*time.Second + time.Millisecond)
	for i := range 2000 {
		s.take(ipKey(buf[:0], netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})), now)
	}
	if n := s.len(); n != 2000 {
		t.Fatalf("%d buckets after expiry, want only the 2000 new ones", n)
	}
}

// TestRateLimitMaxKeysBound: more distinct keys than WithMaxRateKeys in one
// period never hold more than twice the bound (current and previous
// generation).
func TestRateLimitMaxKeysBound(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const maxKeys = 3200
	s := newLimiterStore(1, 100, maxKeys)
	var buf [32]byte
	for i := range 50_000 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(i))
		s.take(ipKey(buf[:0], netip.AddrFrom4(a)), now)
	}
	if n := s.len(); n > 2*maxKeys {
		t.Fatalf("%d buckets, bound %d", n, 2*maxKeys)
	}
}

// TestPreAuthPeekCostsNothing: peeking does not take tokens; failures do.
func TestPreAuthPeekCostsNothing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newLimiterStore(1, 2, DefaultMaxKeys)
	k := []byte("k")
	for range 10 {
		if _, ok := s.peek(k, now); !ok {
			t.Fatal("peek refused a fresh key")
		}
	}
	s.take(k, now)
	s.take(k, now)
	if d, ok := s.peek(k, now); ok || d != time.Second {
		t.Fatalf("peek = %v, %v after the burst, want refused for 1s", d, ok)
	}
}

func TestCanonicalPathRules(t *testing.T) {
	cases := map[string]string{ // input -> canonical, or "" for refused
		"/":              "/",
		"/a/b":           "/a/b",
		"/a/b/":          "/a/b/",
		"/%61/%7E":       "/a/~",
		"/a%20b":         "/a b",
		"/caf%C3%A9":     "/café",
		"/a/%FF":         "",
		"/a/../b":        "",
		"/a/./b":         "",
		"/a/..":          "",
		"/..":            "",
		"/a//b":          "",
		"//":             "",
		"a":              "",
		"":               "",
		"/a%2fb":         "",
		"/a%2Fb":         "",
		"/a%5cb":         "",
		"/a\\b":          "",
		"/a;b":           "",
		"/a%3bb":         "",
		"/a%00":          "",
		"/a%0a":          "",
		"/a%23":          "",
		"/a%3f":          "",
		"/a%2e":          "",
		"/a%252f":        "",
		"/a%":            "",
		"/a%g0":          "",
		"/a b":           "",
		"/a\x00":         "",
		"/...":           "/...",
		"/a..b":          "/a..b",
		"/a:b@c!$&'()*+": "/a:b@c!$&'()*+",
	}
	for in, want := range cases {
		got, err := canonicalPath(in)
		if want == "" {
			if err == nil {
				t.Errorf("canonicalPath(%q) = %q, want refused", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("canonicalPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := canonicalPath("/" + strings.Repeat("a", maxPathLen)); err == nil {
		t.Error("an overlong path was accepted")
	}
}

// fuzzTable is the route table FuzzCanonicalPath matches against.
func fuzzTable(t testing.TB) *table {
	tbl, err := buildTable([]Route{
		{Prefix: "/", Service: "root", Auth: AuthNone},
		{Prefix: "/api", Service: "api", Auth: AuthNone},
		{Prefix: "/api/admin", Service: "admin", Auth: AuthNone, StripPrefix: true},
		{Prefix: "/api/public", Service: "public", Auth: AuthNone, Rewrite: "/v2/public"},
		{Prefix: "/café", Service: "cafe", Auth: AuthNone},
	}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// FuzzCanonicalPath checks canonical paths and route matching: a canonical
// path is a fixed point, holds no dot segment and nothing that a server
// behind could read as another path, matches a route only inside the route's
// prefix boundary, and its upstream path is canonical too.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/api", "/api/admin", "/api/adminx", "/api/admin/x", "/api/%61dmin",
		"/api/public/../admin", "/api/%2e%2e/admin", "/api%2fadmin", "/api/%5cadmin", "/api;/admin", "//api",
		"/api/%00", "/api/%23", "/api/%3f", "/api/%252f", "/caf%C3%A9/x", "/api/admin/", "/a b", "/%zz"} {
		f.Add(s)
	}
	tbl := fuzzTable(f)
	f.Fuzz(func(t *testing.T, in string) {
		p, err := canonicalPath(in)
		if err != nil {
			return
		}
		again, err := canonicalPath(escapePath(p))
		if err != nil || again != p {
			t.Fatalf("canonicalPath(%q) = %q, not a fixed point: %q, %v", in, p, again, err)
		}
		for seg := range strings.SplitSeq(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("canonicalPath(%q) = %q holds a dot segment", in, p)
			}
		}
		if strings.ContainsAny(p, "\\;?#%\x00\r\n") || strings.Contains(p, "//") {
			t.Fatalf("canonicalPath(%q) = %q holds a character a server could reinterpret", in, p)
		}
		r := tbl.match(p)
		if r == nil {
			t.Fatalf("no route for %q, but / matches everything", p)
		}
		if r.Prefix != "/" && p != r.Prefix && !strings.HasPrefix(p, r.Prefix+"/") {
			t.Fatalf("%q matched %q outside its segment boundary", p, r.Prefix)
		}
		for _, o := range tbl.routes { // the longest matching prefix wins
			if len(o.Prefix) > len(r.Prefix) && (p == o.Prefix || strings.HasPrefix(p, o.Prefix+"/")) {
				t.Fatalf("%q matched %q, but %q is longer", p, r.Prefix, o.Prefix)
			}
		}
		up, err := upstreamPath(p, r.Prefix, r.StripPrefix, r.Rewrite)
		if err != nil {
			return
		}
		if c, err := canonicalPath(escapePath(up)); err != nil || c != up {
			t.Fatalf("upstream path %q of %q is not canonical: %q, %v", up, p, c, err)
		}
	})
}

func TestForwardedElementQuotesIPv6(t *testing.T) {
	f := forwarding{peer: netip.MustParseAddr("2001:db8::1"), proto: "https", host: "shop.example"}
	if got := f.forwardedElement(); got != `for="[2001:db8::1]";proto=https;host="shop.example"` {
		t.Fatalf("Forwarded %q", got)
	}
}

func TestIdentityHeaderSpellings(t *testing.T) {
	for _, h := range []string{"X-Forwarded-For", "x_forwarded_for", "X_FORWARDED_HOST", "Forwarded", "X-Real-Ip",
		"x_real_ip", "X-User-Id", "X_User_Roles", "X-Original-Url", "X-Rewrite-Url", "X-Forwarded"} {
		if !isIdentityHeader(h) {
			t.Errorf("%s is not dropped", h)
		}
	}
	for _, h := range []string{"Authorization", "X-Request-Id", "Accept", "X-Userland", "Forwarded-X", "X-Use"} {
		if isIdentityHeader(h) {
			t.Errorf("%s is dropped", h)
		}
	}
}
