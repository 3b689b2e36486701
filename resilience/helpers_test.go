package resilience_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// waitLimit bounds every wait on a state change, so a broken test fails
// rather than hangs.
const waitLimit = 10 * time.Second

// newServer starts a loopback server for h, closed when the test ends.
func newServer(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv
}

// countingServer is a loopback server that counts the connections it accepts.
func countingServer(tb testing.TB, h http.Handler) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv, &conns
}

// newTransport returns a keep-alive transport whose idle connections are closed
// when the test ends (before its servers close, as cleanups run last-in first-out
// and tests create servers first).
func newTransport(tb testing.TB) *http.Transport {
	tb.Helper()
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	tb.Cleanup(tr.CloseIdleConnections)
	return tr
}

// get sends a GET through rt and returns the status and body.
func get(tb testing.TB, rt http.RoundTripper, url string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	return readAll(tb, resp)
}

// readAll reads and closes resp's body.
func readAll(tb testing.TB, resp *http.Response) (int, string) {
	tb.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(b)
}

// hiddenReader hides its reader's type, so http.NewRequest sets no GetBody.
type hiddenReader struct{ r io.Reader }

func (h hiddenReader) Read(p []byte) (int, error) { return h.r.Read(p) }

// closeTracker records whether its body was closed.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

// recv waits for one value from ch, failing the test after waitLimit.
func recv[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		tb.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func mustParse(tb testing.TB, raw string) *url.URL {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}
