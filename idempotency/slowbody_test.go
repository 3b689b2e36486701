package idempotency_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pier-go/pier/idempotency"
	"github.com/pier-go/pier/service"
)

// slowBodyConns is how many connections a slow-body test opens, each
// declaring a body of slowBodyLength and sending one byte of it.
const (
	slowBodyConns  = 50
	slowBodyLength = 1 << 20
)

// runService runs a Service named orders with opts on a loopback listener
// until the test ends, serving h at POST /orders, and returns its address.
func runService(tb testing.TB, h http.HandlerFunc, opts ...service.Option) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := service.New("orders", append([]service.Option{
		service.WithListener(ln),
		service.WithLogger(slog.New(slog.DiscardHandler)),
		service.WithoutDrainDelay(), service.WithShutdown(0, idemWait),
	}, opts...)...)
	if err != nil {
		_ = ln.Close()
		tb.Fatal(err)
	}
	svc.HandleFunc("POST /orders", h)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	tb.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	return ln.Addr().String()
}

// dialSlowBody opens a connection to addr and sends a keyed POST /orders
// whose headers declare a body of slowBodyLength bytes, and then one byte of
// it. The connection is closed when the test ends.
func dialSlowBody(tb testing.TB, addr, key string) net.Conn {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, idemWait)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	req := "POST /orders HTTP/1.1\r\nHost: orders\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(slowBodyLength) + "\r\n" +
		idempotency.Header + ": " + key + "\r\n\r\n{"
	if _, err := io.WriteString(conn, req); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// TestIdempotencySlowBodyOutlivesRequestTimeout: the request timeout did not
// bound reading a keyed request's body, so a client that declared a body and
// sent one byte of it held its connection, its goroutine and its buffer for as
// long as it liked. Each must be answered (or its connection closed) once the
// request's deadline passes.
func TestIdempotencySlowBodyOutlivesRequestTimeout(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	addr := runService(t, func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		w.WriteHeader(http.StatusCreated)
	}, service.WithRequestTimeout(300*time.Millisecond), service.WithMiddleware(mw(t, nil)))

	conns := make([]net.Conn, slowBodyConns)
	for i := range conns {
		conns[i] = dialSlowBody(t, addr, "slow-"+strconv.Itoa(i))
	}
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() {
			// Far past the 300 ms deadline: a passing test never waits it out.
			_ = conn.SetReadDeadline(time.Now().Add(idemWait))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("connection %d: no answer and not closed within %v of a 300ms request timeout", i, idemWait)
				} // else closed by the server: answered as well as it can be
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("connection %d: answer %d %s %s, want a 408 problem", i, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		})
	}
	wg.Wait()
	if runs.Load() != 0 {
		t.Fatalf("the handler ran %d times for bodies that never arrived", runs.Load())
	}
}

// bodyProbe reports, once, that its body's first Read was called.
type bodyProbe struct {
	io.ReadCloser
	once    sync.Once
	reading chan<- struct{}
}

func (p *bodyProbe) Read(b []byte) (int, error) {
	p.once.Do(func() { p.reading <- struct{}{} })
	return p.ReadCloser.Read(b)
}

// TestIdempotencySlowBodyPreallocatesDeclaredLength: a keyed request's body
// buffer was allocated at the length the headers declared, so 50 connections
// that each sent headers and one byte (about 5 KB in all) grew the heap by
// 50 MiB. The buffer must grow with what arrives.
//
// Not parallel: it measures the heap, which other tests would disturb.
func TestIdempotencySlowBodyPreallocatesDeclaredLength(t *testing.T) {
	reading := make(chan struct{}, slowBodyConns)
	probe := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = &bodyProbe{ReadCloser: r.Body, reading: reading}
			next.ServeHTTP(w, r)
		})
	}
	// A request timeout far beyond the test, so that every body is still
	// being read when the heap is measured.
	addr := runService(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) },
		service.WithRequestTimeout(time.Hour), service.WithMiddleware(probe, mw(t, nil)))

	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, slowBodyConns)
	for i := range conns {
		conns[i] = dialSlowBody(t, addr, "heap-"+strconv.Itoa(i))
	}
	for i := range slowBodyConns {
		select {
		case <-reading:
		case <-time.After(idemWait):
			t.Fatalf("only %d of %d requests reached the body", i, slowBodyConns)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&during)
	growth := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	const most = 10 << 20
	t.Logf("heap grew %d KiB", growth>>10)
	if growth > most {
		t.Errorf("heap grew %d KiB while %d connections sent 1 byte of a %d-byte body each, want under %d KiB",
			growth>>10, slowBodyConns, slowBodyLength, most>>10)
	}
	for _, c := range conns {
		_ = c.Close() // the reads fail and the requests end before the Service stops
	}
}
