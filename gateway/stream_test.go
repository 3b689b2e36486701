package gateway_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pier-go/pier/gateway"
)

// TestSSEEventArrivesBeforeUpstreamEnds: an event stream reaches the client
// as the upstream flushes, not when it ends.
func TestSSEEventArrivesBeforeUpstreamEnds(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("events", "/events", "events")})
	release := make(chan struct{})
	e.up["events"].set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Length", "") // no length: a stream
		_, _ = w.Write([]byte("data: first\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte("data: last\n\n"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.front.URL+"/events/x", nil)
	resp, err := e.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first line %q, %v (the upstream has not ended yet)", line, err)
	}
	close(release)
	var rest strings.Builder
	for {
		l, err := br.ReadString('\n')
		rest.WriteString(l)
		if err != nil {
			break
		}
	}
	if !strings.Contains(rest.String(), "data: last") {
		t.Fatalf("rest %q", rest.String())
	}
}

// TestWebSocketThroughGateway: on a route that allows it, a WebSocket
// connection works end to end.
func TestWebSocketThroughGateway(t *testing.T) {
	e := newEnv(t, []gateway.Route{{Name: "ws", Prefix: "/ws", Service: "ws", Auth: gateway.AuthNone, WebSocket: true,
		Timeout: 100 * time.Millisecond}})
	e.up["ws"].set(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, data, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo "), data...)); err != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.front.URL, "http")+"/ws/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"one", "two"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, data, err := c.Read(ctx)
		if err != nil || string(data) != "echo "+msg {
			t.Fatalf("read %q, %v", data, err)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if got := e.up["ws"].last(t); got.Path != "/ws/chat" || got.Header.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Fatalf("upstream saw %q with X-Forwarded-For %q", got.Path, got.Header.Get("X-Forwarded-For"))
	}
}

// TestWebSocketNeeds101: an upstream that answers a handshake with anything
// but 101 does not get the client's connection upgraded.
func TestWebSocketNeeds101(t *testing.T) {
	e := newEnv(t, []gateway.Route{{Name: "ws", Prefix: "/ws", Service: "ws", Auth: gateway.AuthNone, WebSocket: true}})
	e.up["ws"].set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusOK)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.front.URL, "http")+"/ws/chat", nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("the connection was upgraded without a 101 from the upstream")
	}
	if resp == nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Upgrade") != "" {
		t.Fatalf("response %v", resp)
	}
}

// TestRouteTimeoutEndsWithHeaders: a route's timeout bounds the wait for the
// response headers only, so a stream that outlives it is not cut.
func TestRouteTimeoutEndsWithHeaders(t *testing.T) {
	const timeout = 500 * time.Millisecond
	e := newEnv(t, []gateway.Route{{Name: "events", Prefix: "/events", Service: "events", Auth: gateway.AuthNone,
		Timeout: timeout}})
	e.up["events"].set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: first\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-time.After(2 * timeout): // the stream outlives the route's timeout
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte("data: last\n\n"))
	})
	resp, body := e.get(t, "/events/x")
	if resp.StatusCode != http.StatusOK || body != "data: first\n\ndata: last\n\n" {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
}
