package service_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/problem"
	"github.com/pier-go/pier/service"
)

// TestSlowBodyOutlivesRequestTimeout: the request timeout bounded the
// request's context but not the reading of its body, so a client that declared
// a body and sent one byte held its connection and the handler's goroutine
// past every timeout. Each such request must be answered, by DecodeJSON with a
// 408 problem, once its deadline has passed; and the deadline must not spoil
// the connection of a request that outlives it.
func TestSlowBodyOutlivesRequestTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New("orders", service.WithListener(ln), service.WithLogger(slog.New(slog.DiscardHandler)),
		service.WithoutDrainDelay(), service.WithShutdown(0, waitFor), service.WithRequestTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	svc.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Err() != nil {
			http.Error(w, "the request's context ended before its handler ran", http.StatusTeapot)
			return
		}
		var in struct{ Item string }
		if service.DecodeJSON(w, r, &in) != nil {
			return
		}
		// Past the deadline, with the body read: the connection must not be
		// spoiled for the request after this one.
		<-r.Context().Done()
		_ = service.WriteJSON(w, http.StatusCreated, in)
	})
	svc.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Err() != nil {
			http.Error(w, "the request's context ended before its handler ran", http.StatusTeapot)
			return
		}
		<-r.Context().Done()
		w.WriteHeader(http.StatusOK)
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	const conns = 50
	var wg sync.WaitGroup
	for i := range conns {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), waitFor)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		req := "POST /orders HTTP/1.1\r\nHost: orders\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(1<<20) + "\r\n\r\n{"
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			// Far past the 300 ms deadline: a passing test never waits it out.
			_ = conn.SetReadDeadline(time.Now().Add(waitFor))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				t.Errorf("connection %d: no answer and not closed within %v of a 300ms request timeout", i, waitFor)
			case err != nil: // closed by the server: answered as well as it can be
			default:
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != problem.ContentType ||
					!strings.Contains(string(b), "the request body did not arrive within the request's deadline") {
					t.Errorf("connection %d: answer %d %s %s, want a 408 problem", i, resp.StatusCode, resp.Header.Get("Content-Type"), b)
				}
			}
		})
	}
	wg.Wait()

	// Requests whose handlers outlive their deadlines, with a body read or with
	// none, leave their connection fit for the next request: a read deadline
	// left on an idle connection would end the context of every request after.
	tr := &http.Transport{MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: waitFor}
	url := "http://" + ln.Addr().String()
	for i, call := range []struct{ method, path string }{
		{"POST", "/orders"}, {"GET", "/wait"}, {"GET", "/wait"}, {"POST", "/orders"},
	} {
		req, err := http.NewRequest(call.method, url+call.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := http.StatusOK
		if call.method == "POST" {
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(`{"item":"tea"}`)), 14
			want = http.StatusCreated
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d on one connection: %v", i, err)
		}
		drain(resp)
		if resp.StatusCode != want {
			t.Fatalf("request %d on one connection (%s %s): %d, want %d", i, call.method, call.path, resp.StatusCode, want)
		}
	}
}
