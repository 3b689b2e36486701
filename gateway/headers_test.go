package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pier-go/pier/gateway"
)

// TestIdentityHeaderSpoofing sends identity and forwarding headers in
// several spellings: none reaches the upstream, which sees the gateway's own.
func TestIdentityHeaderSpoofing(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	spoofed := []string{
		"X-Forwarded-For: 203.0.113.9",
		"x-forwarded-for: 203.0.113.10",
		"X_Forwarded_For: 203.0.113.11",
		"x_forwarded_host: evil.example",
		"X-Forwarded-Proto: https",
		"X-FORWARDED-PORT: 443",
		"Forwarded: for=203.0.113.12;proto=https",
		"X-Real-IP: 203.0.113.13",
		"x_real_ip: 203.0.113.14",
		"X-User-ID: admin",
		"x-user-roles: admin",
		"X_User_Email: root@example.com",
		"X-Original-URL: /api/admin",
		"X-Original-Method: DELETE",
		"X-Rewrite-URL: /api/admin",
		"True-Client-IP: 203.0.113.15",
		"X-Client-IP: 203.0.113.16",
	}
	resp, body := e.raw(t, "GET", "/api/x", spoofed...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := e.up["api"].last(t)
	for k, vv := range got.Header {
		for _, v := range vv {
			if strings.Contains(v, "203.0.113") || strings.Contains(v, "evil") || strings.Contains(v, "admin") ||
				v == "https" || v == "443" {
				t.Errorf("spoofed value reached the upstream: %s: %s", k, v)
			}
		}
		lk := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if strings.HasPrefix(lk, "x-user-") || strings.HasPrefix(lk, "x-original-") || lk == "x-rewrite-url" ||
			lk == "true-client-ip" || lk == "x-client-ip" || lk == "x-forwarded-port" {
			t.Errorf("identity header reached the upstream: %s", k)
		}
	}
	want := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "gw.example",
		"Forwarded":         `for=127.0.0.1;proto=http;host="gw.example"`,
		"X-Real-Ip":         "127.0.0.1",
	}
	for k, v := range want {
		if vv := got.Header.Values(k); len(vv) != 1 || vv[0] != v {
			t.Errorf("%s = %q, want [%q]", k, vv, v)
		}
	}
}

// TestHopByHopAbuse_CVE2021_32813_CVE2024_45410: a client naming the
// gateway's own headers in Connection (CVE-2021-32813, CVE-2024-45410: hop-by-hop
// abuse to strip headers a proxy adds) strips nothing the gateway sets.
// httputil.ReverseProxy removes Connection-named headers before Rewrite runs,
// and the gateway sets its headers in Rewrite.
func TestHopByHopAbuse_CVE2021_32813_CVE2024_45410(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	resp, body := e.raw(t, "GET", "/api/x",
		"Authorization: Bearer abc.def.ghi",
		"X-Request-ID: req-1",
		"Connection: keep-alive, X-Forwarded-For, Authorization, X-Request-ID, Forwarded, X-Forwarded-Proto, X-Real-IP",
		"X-Custom: dropped-as-hop-by-hop",
		"Connection: X-Custom",
	)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := e.up["api"].last(t)
	for k, v := range map[string]string{
		"X-Forwarded-For": "127.0.0.1", "Authorization": "Bearer abc.def.ghi", "X-Request-Id": "req-1",
		"X-Forwarded-Proto": "http", "X-Real-Ip": "127.0.0.1",
	} {
		if g := got.Header.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if got.Header.Get("Forwarded") == "" {
		t.Error("Forwarded was stripped")
	}
	if got.Header.Get("X-Custom") != "" {
		t.Error("a header the client's Connection names reached the upstream")
	}
	if got.Header.Get("Connection") != "" {
		t.Errorf("Connection reached the upstream: %q", got.Header.Get("Connection"))
	}
}

// TestRequestIDAdded: the upstream always gets an X-Request-ID, a fresh one
// when the client's is unsafe.
func TestRequestIDAdded(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	e.raw(t, "GET", "/api/x", `X-Request-ID: bad id "quoted"`)
	id := e.up["api"].last(t).Header.Get("X-Request-Id")
	if len(id) != 32 {
		t.Fatalf("X-Request-Id %q, want a fresh 32-character ID", id)
	}
}

// TestForwardedSpoofing_CVE2025_41235: Spring Cloud Gateway
// CVE-2025-41235 trusted forwarding headers from anyone. Without
// WithTrustedProxies the client's X-Forwarded-For is dropped; with the peer
// trusted it is kept and the client is its rightmost untrusted address.
func TestForwardedSpoofing_CVE2025_41235(t *testing.T) {
	t.Run("untrusted", func(t *testing.T) {
		e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
		e.raw(t, "GET", "/api/x", "X-Forwarded-For: 198.51.100.1", "X-Forwarded-Proto: https")
		got := e.up["api"].last(t)
		if g := got.Header.Get("X-Forwarded-For"); g != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q, want 127.0.0.1", g)
		}
		if g := got.Header.Get("X-Forwarded-Proto"); g != "http" {
			t.Errorf("X-Forwarded-Proto %q, want http", g)
		}
	})
	t.Run("trusted", func(t *testing.T) {
		e := newEnv(t, []gateway.Route{open("api", "/api", "api")}, gateway.WithTrustedProxies("127.0.0.0/8", "10.0.0.0/8"))
		e.raw(t, "GET", "/api/x", "X-Forwarded-For: 198.51.100.1, 192.0.2.7, 10.1.2.3",
			"X-Forwarded-Proto: https", "X-Forwarded-Host: shop.example", "Forwarded: for=10.1.2.3;proto=https")
		got := e.up["api"].last(t)
		if g := got.Header.Get("X-Forwarded-For"); g != "198.51.100.1, 192.0.2.7, 10.1.2.3, 127.0.0.1" {
			t.Errorf("X-Forwarded-For %q", g)
		}
		if g := got.Header.Get("X-Real-Ip"); g != "192.0.2.7" {
			t.Errorf("X-Real-Ip %q, want the rightmost untrusted hop 192.0.2.7", g)
		}
		if g := got.Header.Get("X-Forwarded-Proto"); g != "https" {
			t.Errorf("X-Forwarded-Proto %q, want https", g)
		}
		if g := got.Header.Get("X-Forwarded-Host"); g != "shop.example" {
			t.Errorf("X-Forwarded-Host %q", g)
		}
		if g := got.Header.Get("Forwarded"); g != `for=10.1.2.3;proto=https, for=127.0.0.1;proto=https;host="shop.example"` {
			t.Errorf("Forwarded %q", g)
		}
	})
}

// TestH2CSmuggling: an h2c upgrade (request smuggling through a proxy
// that lets the connection switch to HTTP/2 cleartext) is ignored: the
// client gets a plain HTTP/1.1 answer and the upstream never sees the ask.
func TestH2CSmuggling(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	resp, body := e.raw(t, "GET", "/api/x", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
		"Connection: Upgrade, HTTP2-Settings")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 (no switch): %s", resp.StatusCode, body)
	}
	got := e.up["api"].last(t)
	for _, k := range []string{"Upgrade", "Http2-Settings", "Connection"} {
		if v := got.Header.Get(k); v != "" {
			t.Errorf("upstream got %s: %q", k, v)
		}
	}
	// Without Connection: Upgrade, HTTP2-Settings alone is dropped as well.
	e.raw(t, "GET", "/api/x", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA")
	if v := e.up["api"].last(t).Header.Get("Http2-Settings"); v != "" {
		t.Errorf("upstream got HTTP2-Settings %q", v)
	}
}

// TestWebSocketRefusedOnPlainRoute: a WebSocket handshake on a route that
// does not allow it never reaches the upstream.
func TestWebSocketRefusedOnPlainRoute(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	resp, body := e.raw(t, "GET", "/api/x", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13")
	wantProblem(t, resp, body, http.StatusBadRequest)
	if n := len(e.up["api"].requests()); n != 0 {
		t.Fatalf("upstream got %d requests", n)
	}
}

// TestTrailerIdentitySmuggling: identity headers sent as request trailers
// (after the gateway looked at the headers) are dropped.
func TestTrailerIdentitySmuggling(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	conn, err := net.DialTimeout("tcp", e.front.Listener.Addr().String(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitFor))
	req := "POST /api/x HTTP/1.1\r\nHost: gw.example\r\nTransfer-Encoding: chunked\r\n" +
		"Trailer: X-User-Id, X-Forwarded-For, Authorization, X-Checksum\r\n\r\n" +
		"5\r\nhello\r\n0\r\nX-User-Id: admin\r\nX-Forwarded-For: 203.0.113.1\r\nAuthorization: Bearer forged\r\n" +
		"X-Checksum: 42\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := e.up["api"].last(t)
	if got.Body != "hello" {
		t.Errorf("body %q", got.Body)
	}
	for _, k := range []string{"X-User-Id", "X-Forwarded-For", "Authorization"} {
		if v := got.Trailer.Get(k); v != "" {
			t.Errorf("trailer %s = %q reached the upstream", k, v)
		}
	}
}

// TestHeaderInjectionCRLFNUL: CR, LF or NUL in a header value would split or
// truncate headers downstream. net/http's server refuses them on the wire;
// the gateway refuses them too when called in process.
func TestHeaderInjectionCRLFNUL(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("api", "/api", "api")})
	for _, v := range []string{"a\r\nX-User-Id: admin", "a\nb", "a\x00b", "a\rb"} {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/x", nil)
			r.Header["X-Note"] = []string{v}
			w := httptest.NewRecorder()
			e.gw.ServeHTTP(w, r)
			wantProblem(t, w.Result(), w.Body.String(), http.StatusBadRequest)
		})
	}
	resp, _ := e.raw(t, "GET", "/api/x", "X-Note: a\x00b")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("NUL on the wire: status %d", resp.StatusCode)
	}
	if n := len(e.up["api"].requests()); n != 0 {
		t.Fatalf("upstream got %d requests", n)
	}
}
