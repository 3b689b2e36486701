package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/problem"
	"github.com/pier-go/pier/service"
)

// waitFor is how long a test waits on a condition before it fails: long, because
// CI machines are shared and slow; a passing test never waits that long.
const waitFor = 10 * time.Second

// logBuffer is an io.Writer safe for concurrent use that collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes every log line written so far.
func (b *logBuffer) lines(tb testing.TB) []map[string]any {
	tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// find returns the log lines whose msg is msg and, when route is not empty,
// whose route is route.
func (b *logBuffer) find(tb testing.TB, msg, route string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, l := range b.lines(tb) {
		if l["msg"] == msg && (route == "" || l["route"] == route) {
			out = append(out, l)
		}
	}
	return out
}

func newLogger(b *logBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// running is a Service started by start.
type running struct {
	svc    *service.Service
	url    string // http://127.0.0.1:port
	cancel context.CancelFunc
	done   chan error // receives Run's result
	logs   *logBuffer
}

// start runs a Service on a free loopback port with a drain delay of 0 (tests
// that look at the drain use their own), a debug JSON logger into a buffer, and
// the given options after those. Cleanup stops it and waits for Run to return.
func start(tb testing.TB, register func(*service.Service), opts ...service.Option) *running {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	logs := &logBuffer{}
	base := []service.Option{
		service.WithListener(ln),
		service.WithLogger(newLogger(logs)),
		service.WithoutDrainDelay(), service.WithShutdown(0, waitFor),
	}
	svc, err := service.New("test", append(base, opts...)...)
	if err != nil {
		_ = ln.Close()
		tb.Fatal(err)
	}
	if register != nil {
		register(svc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { r.done <- svc.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if _, err := r.wait(tb); err != nil {
			tb.Logf("Run: %v", err)
		}
	})
	waitUntil(tb, "the service answers /health/live", func() bool {
		resp, err := http.Get(r.url + service.LivePath)
		if err != nil {
			return false
		}
		drain(resp)
		return resp.StatusCode == http.StatusOK
	})
	return r
}

// wait returns Run's result, failing the test when Run does not return in time.
// ok is false when Run had already returned and its result was taken.
func (r *running) wait(tb testing.TB) (ok bool, err error) {
	tb.Helper()
	select {
	case err, ok = <-r.done:
		if ok {
			close(r.done)
		}
		return ok, err
	case <-time.After(waitFor):
		tb.Fatalf("Run did not return within %v", waitFor)
		return false, nil
	}
}

// waitUntil polls cond until it holds, failing the test after waitFor.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		timer := time.NewTimer(delay)
		<-timer.C
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// get fetches url with a fresh connection and returns the status, header and
// body.
func get(tb testing.TB, c *http.Client, url string) (int, http.Header, string) {
	tb.Helper()
	resp, err := c.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// problemOf decodes an RFC 9457 body, checking its media type.
func problemOf(tb testing.TB, h http.Header, body string) problem.Problem {
	tb.Helper()
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type = %q, want application/problem+json (body %q)", ct, body)
	}
	var p problem.Problem
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		tb.Fatalf("problem body %q: %v", body, err)
	}
	return p
}

// noKeepAlive is a client that opens a new connection per request, so a test
// sees what a new caller sees.
func noKeepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitFor}
}

// serve runs one request through h in memory.
func serve(h http.Handler, method, target string, body io.Reader) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, body))
	return rec
}
