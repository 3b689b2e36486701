package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/service"
)

func TestPanicGives500AndServerKeepsServing(t *testing.T) {
	t.Parallel()
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
		s.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fine") })
	})
	client := &http.Client{Timeout: waitFor}
	code, h, body := get(t, client, r.url+"/panic")
	if code != http.StatusInternalServerError {
		t.Fatalf("panicking handler = %d %s, want 500", code, body)
	}
	p := problemOf(t, h, body)
	if p.Status != 500 || p.RequestID == "" || p.RequestID != h.Get(service.RequestIDHeader) {
		t.Fatalf("problem = %+v, want status 500 and the response's request ID %q", p, h.Get(service.RequestIDHeader))
	}
	if strings.Contains(body, "kaboom") {
		t.Fatalf("the panic value leaked to the client: %s", body)
	}
	// The same client, so the same connection if it survived: it must.
	if code, _, body := get(t, client, r.url+"/ok"); code != http.StatusOK || body != "fine" {
		t.Fatalf("request after a panic = %d %q, want 200 fine", code, body)
	}

	logged := r.logs.find(t, "panic serving request", "")
	if len(logged) != 1 || logged[0]["panic"] != "kaboom" || !strings.Contains(fmt.Sprint(logged[0]["stack"]), "middleware_test.go") {
		t.Fatalf("panic log = %v, want one line with the value and the handler's stack", logged)
	}
	access := r.logs.find(t, "request", "GET /panic")
	if len(access) != 1 || access[0]["status"] != 500.0 || access[0]["level"] != "ERROR" || access[0]["panic"] != true {
		t.Fatalf("access log of the panic = %v, want one ERROR line with status 500 and panic=true", access)
	}
}

func TestPanicAfterHeadersAbortsConnection(t *testing.T) {
	t.Parallel()
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /half", func(w http.ResponseWriter, _ *http.Request) {
			// Chunked, so nothing but the abort tells the client the answer is cut:
			// a 500 problem appended here would end it as if it were whole.
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "partial")
			http.NewResponseController(w).Flush()
			panic("midway")
		})
		s.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fine") })
	})
	resp, err := noKeepAlive().Get(r.url + "/half")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
	}
	if err == nil {
		t.Fatal("a response cut by a panic read as complete")
	}
	if code, _, _ := get(t, noKeepAlive(), r.url+"/ok"); code != http.StatusOK {
		t.Fatalf("request after an aborted one = %d, want 200", code)
	}
}

func TestRequestTimeoutAnswers503(t *testing.T) {
	t.Parallel()
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // a handler that honours its context
		})
		s.HandleFunc("GET /started", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			<-r.Context().Done()
		})
	}, service.WithRequestTimeout(20*time.Millisecond))
	code, h, body := get(t, noKeepAlive(), r.url+"/slow")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("timed-out request = %d %s, want 503", code, body)
	}
	if p := problemOf(t, h, body); !strings.Contains(p.Detail, "deadline") {
		t.Fatalf("detail = %q, want it to name the deadline", p.Detail)
	}
	// A response already begun is left alone.
	if code, _, _ := get(t, noKeepAlive(), r.url+"/started"); code != http.StatusAccepted {
		t.Fatalf("begun response = %d, want its own 202", code)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	type in struct {
		Name string `json:"name"`
	}
	r := start(t, func(s *service.Service) {
		s.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
			var v in
			if err := service.DecodeJSON(w, r, &v); err != nil {
				return
			}
			_ = service.WriteJSON(w, http.StatusOK, v)
		})
	}, service.WithBodyLimit(64))
	big := `{"name":"` + strings.Repeat("x", 100) + `"}`

	// A declared length over the limit is refused before the handler runs, so a
	// handler that never reads its body is not run for nothing.
	t.Run("declared too large skips the handler", func(t *testing.T) {
		ran := false
		h := service.BodyLimit(64)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true }))
		rec := serve(h, "POST", "/", strings.NewReader(big))
		if rec.Code != http.StatusRequestEntityTooLarge || ran {
			t.Fatalf("status %d, handler ran %t; want 413 without running it", rec.Code, ran)
		}
	})
	tests := []struct {
		name    string
		body    io.Reader
		length  int64 // -1: chunked, no Content-Length
		want    int
		problem bool
	}{
		{"small", strings.NewReader(`{"name":"ok"}`), 13, http.StatusOK, false},
		{"declared too large", strings.NewReader(big), int64(len(big)), http.StatusRequestEntityTooLarge, true},
		{"chunked too large", io.MultiReader(strings.NewReader(big)), -1, http.StatusRequestEntityTooLarge, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest("POST", r.url+"/echo", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tt.length
			req.Header.Set("Content-Type", "application/json")
			resp, err := noKeepAlive().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, b, tt.want)
			}
			if tt.problem {
				if p := problemOf(t, resp.Header, string(b)); !strings.Contains(p.Detail, "64 bytes") {
					t.Fatalf("detail = %q, want the limit named", p.Detail)
				}
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	var seen string
	h := service.RequestID()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = service.RequestIDFromContext(r.Context())
	}))
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"none", "", false},
		{"sane", "req-42.abc:x/y+z=", true},
		{"spaces", "a b", false},
		{"newline", "a\nb", false},
		{"quote", `a"b`, false},
		{"too long", strings.Repeat("a", 129), false},
		{"longest", strings.Repeat("a", 128), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tt.incoming != "" {
				req.Header.Set(service.RequestIDHeader, tt.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(service.RequestIDHeader)
			if got != seen {
				t.Fatalf("header %q and context %q differ", got, seen)
			}
			if tt.keep && got != tt.incoming {
				t.Fatalf("ID = %q, want the incoming %q kept", got, tt.incoming)
			}
			if !tt.keep && (got == tt.incoming || len(got) != 32) {
				t.Fatalf("ID = %q, want a fresh 32-character ID", got)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	// User middleware that replaces the request, as tracing middleware does:
	// the route must still reach the access log.
	type key struct{}
	replace := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, 1)))
		})
	}
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "user "+r.PathValue("id"))
		})
		s.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusBadGateway)
		})
	}, service.WithMiddleware(replace))
	req, _ := http.NewRequest("GET", r.url+"/users/42", nil)
	req.Header.Set(service.RequestIDHeader, "trace-me")
	resp, err := noKeepAlive().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	get(t, noKeepAlive(), r.url+"/broken")
	get(t, noKeepAlive(), r.url+service.ReadyPath)

	user := r.logs.find(t, "request", "GET /users/{id}")
	if len(user) != 1 {
		t.Fatalf("access log lines for the user route = %v, want 1", r.logs.lines(t))
	}
	l := user[0]
	want := map[string]any{"level": "INFO", "method": "GET", "path": "/users/42", "status": 200.0,
		"bytes": 7.0, "request_id": "trace-me", "service": "test"}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("access log %s = %v, want %v (line %v)", k, l[k], v, l)
		}
	}
	if _, ok := l["duration"]; !ok {
		t.Errorf("access log has no duration: %v", l)
	}
	if _, ok := l["panic"]; ok {
		t.Errorf("access log has a panic attribute for a normal request: %v", l)
	}
	if b := r.logs.find(t, "request", "GET /broken"); len(b) != 1 || b[0]["level"] != "ERROR" || b[0]["status"] != 502.0 {
		t.Errorf("5xx access log = %v, want one ERROR line with 502", b)
	}
	if h := r.logs.find(t, "request", "GET "+service.ReadyPath); len(h) == 0 || h[0]["level"] != "DEBUG" {
		t.Errorf("health probe access log = %v, want DEBUG", h)
	}
}

func TestAccessLogOff(t *testing.T) {
	t.Parallel()
	r := start(t, nil, service.WithoutAccessLog())
	get(t, noKeepAlive(), r.url+"/missing")
	if l := r.logs.find(t, "request", ""); len(l) != 0 {
		t.Fatalf("access log off but logged %v", l)
	}
}

func TestMiddlewareOrder(t *testing.T) {
	t.Parallel()
	var order []string
	mw := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Built-ins run outside: the request already has its ID and deadline.
				_, hasDeadline := r.Context().Deadline()
				order = append(order, fmt.Sprintf("%s id=%t deadline=%t", name,
					service.RequestIDFromContext(r.Context()) != "", hasDeadline))
				next.ServeHTTP(w, r)
			})
		}
	}
	svc, err := service.New("test", service.WithLogger(newLogger(&logBuffer{})),
		service.WithMiddleware(mw("first"), mw("second")))
	if err != nil {
		t.Fatal(err)
	}
	svc.HandleFunc("GET /x", func(http.ResponseWriter, *http.Request) { order = append(order, "handler") })
	serve(svc, "GET", "/x", nil)
	want := "[first id=true deadline=true second id=true deadline=true handler]"
	if got := fmt.Sprint(order); got != want {
		t.Fatalf("order = %s, want %s", got, want)
	}
}

func TestStreamingWorksThroughTheStack(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
			for i := range 3 {
				fmt.Fprintf(w, "chunk %d\n", i)
				if err := http.NewResponseController(w).Flush(); err != nil {
					t.Errorf("flush: %v", err)
					return
				}
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
			}
		})
	})
	resp, err := noKeepAlive().Get(r.url + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	for i := range 3 {
		// Each chunk arrives while the handler still waits: it was flushed.
		n, err := resp.Body.Read(buf)
		if err != nil || string(buf[:n]) != fmt.Sprintf("chunk %d\n", i) {
			t.Fatalf("chunk %d = %q, %v", i, buf[:n], err)
		}
		next <- struct{}{}
	}
}

func TestServiceAdoptsTheCallersBudget(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var left time.Duration
	var hasDeadline bool
	svc, err := service.New("test", service.WithLogger(newLogger(&logBuffer{})),
		service.WithRequestTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	svc.HandleFunc("GET /budget", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var dl time.Time
		dl, hasDeadline = r.Context().Deadline()
		left = time.Until(dl)
	})
	tests := []struct {
		name   string
		header string
		max    time.Duration // the handler's deadline is at most this far
		min    time.Duration // and more than this
	}{
		{"smaller budget wins", "2000", 2 * time.Second, 0},
		{"own timeout wins over a larger budget", "7200000", time.Minute, 2 * time.Second},
		{"malformed budget is ignored", "soon", time.Minute, 2 * time.Second},
		{"negative budget is ignored", "-5", time.Minute, 2 * time.Second},
		{"no budget", "", time.Minute, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/budget", nil)
			if tt.header != "" {
				req.Header.Set("X-Pier-Timeout-Ms", tt.header)
			}
			svc.ServeHTTP(httptest.NewRecorder(), req)
			mu.Lock()
			defer mu.Unlock()
			if !hasDeadline || left > tt.max || left <= tt.min {
				t.Fatalf("deadline in %v (set %t), want within (%v, %v]", left, hasDeadline, tt.min, tt.max)
			}
		})
	}
}

func TestSpentBudgetAnswers503(t *testing.T) {
	t.Parallel()
	ran := false
	svc, err := service.New("test", service.WithLogger(newLogger(&logBuffer{})), service.WithoutRequestTimeout())
	if err != nil {
		t.Fatal(err)
	}
	svc.HandleFunc("GET /work", func(w http.ResponseWriter, r *http.Request) {
		ran = true
		<-r.Context().Done() // honours its context
	})
	req := httptest.NewRequest("GET", "/work", nil)
	req.Header.Set("X-Pier-Timeout-Ms", "0") // the caller has no time left
	rec := httptest.NewRecorder()
	svc.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !ran {
		t.Fatalf("status %d (handler ran %t), want 503 from a context already past its deadline", rec.Code, ran)
	}
}
