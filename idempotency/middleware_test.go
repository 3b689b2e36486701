package idempotency_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pier-go/pier/idempotency"
	"github.com/pier-go/pier/resilience"
	"github.com/pier-go/pier/service"
)

// idemWait bounds every wait in these tests; a passing test never waits it out.
const idemWait = 10 * time.Second

// idemServer serves h at POST /orders, POST /other and GET /orders in a Service
// configured by opts (put Middleware in WithMiddleware), on a loopback
// httptest server, and returns its URL.
func idemServer(tb testing.TB, h http.HandlerFunc, opts ...service.Option) string {
	tb.Helper()
	svc, err := service.New("orders", append([]service.Option{service.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	svc.HandleFunc("POST /orders", h)
	svc.HandleFunc("POST /other", h)
	svc.HandleFunc("GET /orders", h)
	srv := httptest.NewServer(svc)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// idemClient returns a client whose idle connections are closed at cleanup.
func idemClient(tb testing.TB) *http.Client {
	tb.Helper()
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: idemWait}
}

type idemAnswer struct {
	status int
	header http.Header
	body   string
}

// replayed reports whether the answer came from the store.
func (a idemAnswer) replayed() bool { return a.header.Get(idempotency.ReplayedHeader) == "true" }

// idemDo sends method url with body and, unless key is empty, an Idempotency-Key.
func idemDo(tb testing.TB, c *http.Client, method, url, key, body string) idemAnswer {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set(idempotency.Header, key)
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return idemAnswer{resp.StatusCode, resp.Header, string(b)}
}

// createOrder is a handler that counts its runs and answers 201 with the run's
// number in a header and the body.
func createOrder(runs *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := runs.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Location", "/orders/"+strconv.FormatInt(n, 10))
		w.Header().Add("X-Order", "a")
		w.Header().Add("X-Order", "b")
		_ = service.WriteJSON(w, http.StatusCreated, map[string]any{"order": n, "got": string(body)})
	}
}

// wantProblem checks that a is a problem with status and detail.
func wantProblem(tb testing.TB, a idemAnswer, status int, detail string) {
	tb.Helper()
	if a.status != status || a.header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(a.body, `"detail":"`+detail+`"`) {
		tb.Fatalf("answer = %d %s %s, want a %d problem saying %q", a.status, a.header.Get("Content-Type"), a.body, status, detail)
	}
}

func TestIdempotencyReplaysRepeat(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	url := idemServer(t, createOrder(&runs), service.WithMiddleware(mw(t, memStore(t))))
	c := idemClient(t)

	first := idemDo(t, c, "POST", url+"/orders", "order-1", `{"item":"tea"}`)
	second := idemDo(t, c, "POST", url+"/orders", "order-1", `{"item":"tea"}`)
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", runs.Load())
	}
	if first.status != http.StatusCreated || first.replayed() {
		t.Fatalf("first answer = %d replayed=%v, want 201 not replayed", first.status, first.replayed())
	}
	if second.status != first.status || second.body != first.body || !second.replayed() {
		t.Fatalf("repeat = %d %q replayed=%v, want %d %q replayed", second.status, second.body, second.replayed(), first.status, first.body)
	}
	for _, h := range []string{"Location", "X-Order", "Content-Type", "Content-Length"} {
		if diff := cmp.Diff(first.header.Values(h), second.header.Values(h)); diff != "" {
			t.Errorf("header %s of the repeat (-first +repeat):\n%s", h, diff)
		}
	}
	// Outer middleware's headers are the repeat's own, not copies of the first's.
	id1, id2 := first.header.Get(service.RequestIDHeader), second.header.Get(service.RequestIDHeader)
	if id1 == "" || id2 == "" || id1 == id2 {
		t.Errorf("request IDs %q and %q, want two different IDs", id1, id2)
	}
}

func TestIdempotencyConcurrentRepeatsRunHandlerOnce(t *testing.T) {
	t.Parallel()
	const n = 50
	var runs, arrived atomic.Int64
	allIn := make(chan struct{})
	count := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if arrived.Add(1) == n {
				close(allIn)
			}
			next.ServeHTTP(w, r)
		})
	}
	order := createOrder(&runs)
	url := idemServer(t, func(w http.ResponseWriter, r *http.Request) {
		select { // every request is in the middleware before the first answers
		case <-allIn:
		case <-time.After(idemWait):
		}
		order(w, r)
	}, service.WithMiddleware(count, mw(t, nil)))
	c := idemClient(t)

	answers := make([]idemAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = idemDo(t, c, "POST", url+"/orders", "same", "x") })
	}
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times for %d concurrent requests with one key, want 1", runs.Load(), n)
	}
	replays := 0
	for i, a := range answers {
		if a.status != answers[0].status || a.body != answers[0].body || a.header.Get("Location") != "/orders/1" {
			t.Fatalf("answer %d = %d %q, want %d %q", i, a.status, a.body, answers[0].status, answers[0].body)
		}
		if a.replayed() {
			replays++
		}
	}
	if replays != n-1 {
		t.Fatalf("%d answers replayed, want %d", replays, n-1)
	}
}

// watchedStore wraps a store: it signals on waiting each time Claim finds the
// key held by another request, and with poll it hides Changed, as a shared
// store that cannot notify would.
type watchedStore struct {
	idempotency.Store
	poll    bool
	waiting chan struct{}
}

func (s *watchedStore) Claim(ctx context.Context, key, fp string, lease time.Duration) (idempotency.Record, error) {
	rec, err := s.Store.Claim(ctx, key, fp, lease)
	if err == nil && rec.Token == "" && rec.Response == nil {
		if s.poll {
			rec.Changed = nil
		}
		select {
		case s.waiting <- struct{}{}:
		default:
		}
	}
	return rec, err
}

func TestIdempotencySharedStoreAcrossInstances(t *testing.T) {
	t.Parallel()
	t.Run("retry on the other instance", func(t *testing.T) {
		t.Parallel()
		store := memStore(t)
		var runsA, runsB atomic.Int64
		a := idemServer(t, createOrder(&runsA), service.WithMiddleware(mw(t, store)))
		b := idemServer(t, createOrder(&runsB), service.WithMiddleware(mw(t, store)))
		c := idemClient(t)
		first := idemDo(t, c, "POST", a+"/orders", "k", "tea")
		retry := idemDo(t, c, "POST", b+"/orders", "k", "tea")
		if runsA.Load() != 1 || runsB.Load() != 0 {
			t.Fatalf("handler ran %d times on A and %d on B, want 1 and 0", runsA.Load(), runsB.Load())
		}
		if retry.status != first.status || retry.body != first.body || !retry.replayed() {
			t.Fatalf("retry on B = %d %q replayed=%v, want A's %d %q replayed", retry.status, retry.body, retry.replayed(), first.status, first.body)
		}
	})
	for _, poll := range []bool{false, true} {
		name := "retry waits for the first: notified"
		if poll {
			name = "retry waits for the first: polling"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := &watchedStore{Store: memStore(t), poll: poll, waiting: make(chan struct{}, 1)}
			var runsA, runsB atomic.Int64
			started, release := make(chan struct{}), make(chan struct{})
			orderA := createOrder(&runsA)
			a := idemServer(t, func(w http.ResponseWriter, r *http.Request) {
				close(started)
				<-release
				orderA(w, r)
			}, service.WithMiddleware(mw(t, store)))
			b := idemServer(t, createOrder(&runsB), service.WithMiddleware(mw(t, store)))
			c := idemClient(t)

			firstDone := make(chan idemAnswer, 1)
			go func() { firstDone <- idemDo(t, c, "POST", a+"/orders", "k", "tea") }()
			<-started
			retryDone := make(chan idemAnswer, 1)
			go func() { retryDone <- idemDo(t, c, "POST", b+"/orders", "k", "tea") }()
			select {
			case <-store.waiting:
			case <-time.After(idemWait):
				t.Fatal("the retry on B never found the key in progress")
			}
			close(release)
			first, retry := <-firstDone, <-retryDone
			if runsA.Load() != 1 || runsB.Load() != 0 {
				t.Fatalf("handler ran %d times on A and %d on B, want 1 and 0", runsA.Load(), runsB.Load())
			}
			if retry.status != http.StatusCreated || retry.body != first.body || !retry.replayed() {
				t.Fatalf("retry on B = %d %q replayed=%v, want A's 201 %q replayed", retry.status, retry.body, retry.replayed(), first.body)
			}
		})
	}
}

func TestIdempotencyKeepsOnlyFinalAnswers(t *testing.T) {
	t.Parallel()
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Error(w, http.StatusText(code), code) }
	}
	tests := []struct {
		name    string
		h       http.HandlerFunc
		opts    []idempotency.Option
		want    int  // the status the client gets
		wantRun bool // whether the repeat runs the handler again
	}{
		{"429", status(http.StatusTooManyRequests), nil, 429, true},
		{"502", status(http.StatusBadGateway), nil, 502, true},
		{"503", status(http.StatusServiceUnavailable), nil, 503, true},
		{"504", status(http.StatusGatewayTimeout), nil, 504, true},
		{"panic", func(http.ResponseWriter, *http.Request) { panic("boom") }, nil, 500, true},
		{"response over the max body", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("x", 20))
			_, _ = io.WriteString(w, strings.Repeat("y", 20))
		}, []idempotency.Option{idempotency.WithMaxBody(32)}, 200, true},
		{"Content-Length over the max body", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "40")
			_, _ = io.WriteString(w, strings.Repeat("x", 40))
		}, []idempotency.Option{idempotency.WithMaxBody(32)}, 200, true},
		{"hijacked", func(w http.ResponseWriter, _ *http.Request) {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = rw.WriteString("HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			_ = rw.Flush()
		}, nil, 202, true},
		{"500", status(http.StatusInternalServerError), nil, 500, false},
		{"400", status(http.StatusBadRequest), nil, 400, false},
		{"nothing written", func(http.ResponseWriter, *http.Request) {}, nil, 200, false},
		{"body at the max body", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("x", 32))
		}, []idempotency.Option{idempotency.WithMaxBody(32)}, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var runs atomic.Int64
			url := idemServer(t, func(w http.ResponseWriter, r *http.Request) {
				runs.Add(1)
				tt.h(w, r)
			}, service.WithMiddleware(mw(t, memStore(t), tt.opts...)))
			c := idemClient(t)
			first := idemDo(t, c, "POST", url+"/orders", "k", "x")
			second := idemDo(t, c, "POST", url+"/orders", "k", "x")
			if first.status != tt.want || second.status != tt.want {
				t.Fatalf("answers %d and %d, want %d", first.status, second.status, tt.want)
			}
			if !tt.wantRun && second.body != first.body {
				t.Fatalf("replayed body %q, want the first's %q", second.body, first.body)
			}
			if wantRuns := map[bool]int64{true: 2, false: 1}[tt.wantRun]; runs.Load() != wantRuns {
				t.Fatalf("handler ran %d times, want %d", runs.Load(), wantRuns)
			}
			if second.replayed() == tt.wantRun {
				t.Fatalf("repeat replayed = %v, want %v", second.replayed(), !tt.wantRun)
			}
		})
	}
}

// TestIdempotencyReleasesKeyWhenContextEndsBeforeAnswer: a handler that gives
// up without writing (the client left, the deadline passed) has not answered,
// so the retry must run it.
func TestIdempotencyReleasesKeyWhenContextEndsBeforeAnswer(t *testing.T) {
	t.Parallel()
	store := memStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := mw(t, store)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { cancel() }))
	req := httptest.NewRequestWithContext(ctx, "POST", "/orders", strings.NewReader("x"))
	req.Header.Set(idempotency.Header, "k")
	h.ServeHTTP(httptest.NewRecorder(), req)
	rec, err := store.Claim(context.Background(), "POST /orders\nk", "any", time.Minute)
	if err != nil || rec.Token == "" {
		t.Fatalf("Claim after the handler gave up = %+v, %v; want the key free", rec, err)
	}
}

func TestIdempotencyKeyReusedWithDifferentRequest(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	url := idemServer(t, createOrder(&runs), service.WithMiddleware(mw(t, memStore(t))))
	c := idemClient(t)
	if a := idemDo(t, c, "POST", url+"/orders", "k", "tea"); a.status != http.StatusCreated {
		t.Fatalf("first = %d %s", a.status, a.body)
	}
	const reused = "Idempotency-Key reused with a different request"
	wantProblem(t, idemDo(t, c, "POST", url+"/orders", "k", "coffee"), http.StatusUnprocessableEntity, reused)
	wantProblem(t, idemDo(t, c, "POST", url+"/orders?size=large", "k", "tea"), http.StatusUnprocessableEntity, reused)
	// Another route is another scope: the same key is another key there.
	if a := idemDo(t, c, "POST", url+"/other", "k", "coffee"); a.status != http.StatusCreated || a.replayed() {
		t.Fatalf("same key on another route = %d replayed=%v, want 201 from the handler", a.status, a.replayed())
	}
	if runs.Load() != 2 {
		t.Fatalf("handler ran %d times, want 2", runs.Load())
	}

	// A key in progress for another request is refused at once, not waited for.
	store := memStore(t)
	if _, err := store.Claim(context.Background(), "POST /orders\nbusy", "another request", time.Minute); err != nil {
		t.Fatal(err)
	}
	h := mw(t, store)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler ran") }))
	req := httptest.NewRequest("POST", "/orders", strings.NewReader("tea"))
	req.Header.Set(idempotency.Header, "busy")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	wantProblem(t, idemAnswer{w.Code, w.Header(), w.Body.String()}, http.StatusUnprocessableEntity, reused)
}

func TestIdempotencyInvalidKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		keys   []string
		status int
	}{
		{"empty", []string{""}, 400},
		{"256 characters", []string{strings.Repeat("k", 256)}, 400},
		{"control character", []string{"a\x01b"}, 400},
		{"tab", []string{"a\tb"}, 400},
		{"non-ASCII", []string{"clé"}, 400},
		{"two headers", []string{"a", "b"}, 400},
		{"255 characters", []string{strings.Repeat("k", 255)}, 200},
		{"inner space and punctuation", []string{`order 42/"x"~`}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ran := false
			h := mw(t, nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true }))
			req := httptest.NewRequest("POST", "/orders", strings.NewReader("x"))
			req.Header[idempotency.Header] = tt.keys
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.status || ran != (tt.status == 200) {
				t.Fatalf("answer %d (handler ran: %v), want %d", w.Code, ran, tt.status)
			}
			if tt.status == 400 {
				if p := w.Body.String(); w.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(p, "Idempotency-Key") {
					t.Fatalf("400 body %q, want a problem naming Idempotency-Key", p)
				}
			}
		})
	}
}

func TestIdempotencyPassesThroughWithoutKey(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	url := idemServer(t, createOrder(&runs), service.WithMiddleware(mw(t, nil)))
	c := idemClient(t)
	for _, req := range []struct{ method, key string }{
		{"POST", ""}, {"POST", ""}, // no key
		{"GET", "k"}, {"GET", "k"}, // a safe method has nothing to protect
		{"GET", strings.Repeat("k", 300)}, // and its key is not even checked
	} {
		if a := idemDo(t, c, req.method, url+"/orders", req.key, ""); a.status != http.StatusCreated || a.replayed() {
			t.Fatalf("%s with key %q = %d replayed=%v, want 201 from the handler", req.method, req.key, a.status, a.replayed())
		}
	}
	if runs.Load() != 5 {
		t.Fatalf("handler ran %d times, want 5", runs.Load())
	}
}

// TestIdempotencyHandsBodyOnWithItsLimit: the handler reads the body the
// middleware has read, and DecodeJSON still applies the Service's limit rather
// than its own default.
func TestIdempotencyHandsBodyOnWithItsLimit(t *testing.T) {
	t.Parallel()
	const limit = 2 * service.DefaultBodyLimit
	svc, err := service.New("orders", service.WithLogger(slog.New(slog.DiscardHandler)), service.WithBodyLimit(limit),
		service.WithMiddleware(mw(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	svc.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		if service.DecodeJSON(w, r, &in) != nil {
			return
		}
		_ = service.WriteJSON(w, http.StatusCreated, len(in.Name))
	})
	name := strings.Repeat("a", int(service.DefaultBodyLimit)+10)
	tests := []struct {
		name    string
		body    string
		chunked bool
		status  int
		answer  string
	}{
		{"over the default, under the limit", `{"name":"` + name + `"}`, false, 201, strconv.Itoa(len(name)) + "\n"},
		{"chunked over the limit", strings.Repeat(" ", int(limit)+1), true, 413, ""},
		{"empty", "", false, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("POST", "/orders", strings.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
			}
			req.Header.Set(idempotency.Header, "k-"+tt.name)
			w := httptest.NewRecorder()
			svc.ServeHTTP(w, req)
			if w.Code != tt.status || tt.answer != "" && w.Body.String() != tt.answer {
				t.Fatalf("answer %d %.200q, want %d %q", w.Code, w.Body.String(), tt.status, tt.answer)
			}
			if tt.status == 413 && !strings.Contains(w.Body.String(), "request body exceeds the limit of "+strconv.FormatInt(limit, 10)+" bytes") {
				t.Fatalf("413 body %q, want %q", w.Body.String(), "request body exceeds the limit of "+strconv.FormatInt(limit, 10)+" bytes")
			}
		})
	}
}

func TestIdempotencyWaiterGets409WhenItsContextEnds(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	order := createOrder(&runs)
	url := idemServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release // past its own deadline: the answer is still its own
		order(w, r)
	}, service.WithRequestTimeout(100*time.Millisecond), service.WithMiddleware(mw(t, nil)))
	c := idemClient(t)

	firstDone := make(chan idemAnswer, 1)
	go func() { firstDone <- idemDo(t, c, "POST", url+"/orders", "k", "tea") }()
	select {
	case <-started:
	case <-time.After(idemWait):
		t.Fatal("the first request never reached the handler")
	}
	wantProblem(t, idemDo(t, c, "POST", url+"/orders", "k", "tea"), http.StatusConflict,
		"a request with this Idempotency-Key is in progress")
	close(release)
	first := <-firstDone
	if again := idemDo(t, c, "POST", url+"/orders", "k", "tea"); again.status != http.StatusCreated ||
		again.body != first.body || !again.replayed() {
		t.Fatalf("after the first completed = %d %q replayed=%v, want its 201 replayed", again.status, again.body, again.replayed())
	}
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", runs.Load())
	}
}

func TestIdempotencyStreamsWhileKeeping(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	gotFirst := make(chan struct{})
	url := idemServer(t, func(w http.ResponseWriter, _ *http.Request) {
		runs.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "first part\n")
		w.(http.Flusher).Flush()
		if runs.Load() == 1 {
			select { // the client reads the first part before the handler goes on
			case <-gotFirst:
			case <-time.After(idemWait):
			}
		}
		_, _ = io.WriteString(w, "second part\n")
	}, service.WithMiddleware(mw(t, nil)))
	c := idemClient(t)

	req, _ := http.NewRequest("POST", url+"/orders", strings.NewReader("x"))
	req.Header.Set(idempotency.Header, "stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	part := make([]byte, len("first part\n"))
	if _, err := io.ReadFull(resp.Body, part); err != nil || string(part) != "first part\n" {
		t.Fatalf("first part = %q, %v", part, err)
	}
	close(gotFirst)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second part\n" {
		t.Fatalf("rest = %q, %v", rest, err)
	}
	again := idemDo(t, c, "POST", url+"/orders", "stream", "x")
	if again.body != "first part\nsecond part\n" || !again.replayed() || runs.Load() != 1 {
		t.Fatalf("repeat = %q replayed=%v after %d runs, want the whole stream replayed after 1", again.body, again.replayed(), runs.Load())
	}
}

func TestIdempotencyScopeSeparatesCallers(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	byUser := idempotency.WithScope(func(r *http.Request) string {
		return r.Method + " " + r.URL.Path + " " + r.Header.Get("X-User-ID")
	})
	h := mw(t, nil, byUser)(createOrder(&runs))
	send := func(user string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/orders", strings.NewReader("tea"))
		req.Header.Set(idempotency.Header, "k")
		req.Header.Set("X-User-ID", user)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	ada, bob, adaAgain := send("ada"), send("bob"), send("ada")
	if runs.Load() != 2 || ada.Body.String() == bob.Body.String() || adaAgain.Body.String() != ada.Body.String() {
		t.Fatalf("ran %d times; ada %q, bob %q, ada again %q; want 2 runs, bob's own answer, ada's replayed",
			runs.Load(), ada.Body, bob.Body, adaAgain.Body)
	}
}

// leaseStore records the lease of each Claim.
type leaseStore struct {
	idempotency.Store
	mu     sync.Mutex
	leases []time.Duration
}

func (s *leaseStore) Claim(ctx context.Context, key, fp string, lease time.Duration) (idempotency.Record, error) {
	s.mu.Lock()
	s.leases = append(s.leases, lease)
	s.mu.Unlock()
	return s.Store.Claim(ctx, key, fp, lease)
}

// TestIdempotencyLeaseCoversDeadline: a claim lasts the configured lease, or
// until the request's deadline and a margin when that is later, so a handler
// that honours its deadline cannot outlive its claim.
func TestIdempotencyLeaseCoversDeadline(t *testing.T) {
	t.Parallel()
	store := &leaseStore{Store: memStore(t)}
	h := mw(t, store, idempotency.WithLease(time.Minute))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for i, timeout := range []time.Duration{0, time.Second, time.Hour} {
		ctx := context.Background()
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		req := httptest.NewRequestWithContext(ctx, "POST", "/orders", nil)
		req.Header.Set(idempotency.Header, "lease-"+strconv.Itoa(i))
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	if len(store.leases) != 3 || store.leases[0] != time.Minute || store.leases[1] != time.Minute ||
		store.leases[2] <= time.Hour || store.leases[2] > time.Hour+5*time.Second {
		t.Fatalf("leases %v, want 1m, 1m and about 1h+5s", store.leases)
	}
}

// failingStore fails every call.
type failingStore struct{}

var errStoreDown = errors.New("store down")

func (failingStore) Claim(context.Context, string, string, time.Duration) (idempotency.Record, error) {
	return idempotency.Record{}, errStoreDown
}
func (failingStore) Complete(context.Context, string, string, *idempotency.Response) error {
	return errStoreDown
}
func (failingStore) Release(context.Context, string, string) error { return errStoreDown }

func TestIdempotencyStoreDownGives503(t *testing.T) {
	t.Parallel()
	h := mw(t, failingStore{})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler ran") }))
	req := httptest.NewRequest("POST", "/orders", strings.NewReader("x"))
	req.Header.Set(idempotency.Header, "k")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	wantProblem(t, idemAnswer{w.Code, w.Header(), w.Body.String()}, http.StatusServiceUnavailable,
		"the idempotency key store is unavailable")
}

// TestIdempotencyStoreFullGives503: past the store's bound on claims in
// progress, a new key is refused before the handler runs, with a problem the
// client may retry after the time it names.
func TestIdempotencyStoreFullGives503(t *testing.T) {
	t.Parallel()
	store, err := idempotency.NewMemoryStore(idempotency.WithMaxInProgress(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Claim(context.Background(), "POST /orders\nheld", "fp", time.Minute); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int64
	url := idemServer(t, createOrder(&runs), service.WithMiddleware(mw(t, store)))
	a := idemDo(t, idemClient(t), "POST", url+"/orders", "another", "tea")
	wantProblem(t, a, http.StatusServiceUnavailable, "too many requests with an Idempotency-Key are in progress")
	if got := a.header.Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After %q, want \"1\"", got)
	}
	if runs.Load() != 0 {
		t.Fatalf("handler ran %d times, want 0", runs.Load())
	}
}

// mw returns the middleware over store, failing the test on an error.
func mw(tb testing.TB, store idempotency.Store, opts ...idempotency.Option) func(http.Handler) http.Handler {
	tb.Helper()
	m, err := idempotency.Middleware(store, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// memStore returns a memory store with its defaults.
func memStore(tb testing.TB) *idempotency.MemoryStore {
	tb.Helper()
	s, err := idempotency.NewMemoryStore()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestIdempotencyKeepsWhatTheClientDoesNotRetry holds the middleware's list of
// answers it does not keep in step with the statuses pier's client retries:
// an answer the client retries must be released so that the retry runs the
// handler, and every other answer kept.
func TestIdempotencyKeepsWhatTheClientDoesNotRetry(t *testing.T) {
	t.Parallel()
	for status := 200; status < 600; status++ {
		store := memStore(t)
		h := mw(t, store)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
		req := httptest.NewRequest("POST", "/orders", nil)
		req.Header.Set(idempotency.Header, "k")
		h.ServeHTTP(httptest.NewRecorder(), req)
		rec, err := store.Claim(context.Background(), "POST /orders\nk", "other", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		kept := rec.Token == ""
		if kept == resilience.FailureStatus(status) {
			t.Errorf("status %d: kept = %v, but the client retries it: %v", status, kept, resilience.FailureStatus(status))
		}
	}
}

func TestMiddlewareRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]idempotency.Option{
		"negative max body": idempotency.WithMaxBody(-1),
		"negative lease":    idempotency.WithLease(-time.Second),
		"nil caller":        idempotency.WithCallerScope(nil),
		"nil":               nil,
	} {
		if _, err := idempotency.Middleware(nil, opt); err == nil {
			t.Errorf("%s: Middleware returned no error", name)
		}
	}
	for name, opt := range map[string]idempotency.MemoryOption{
		"negative keys":                  idempotency.WithMaxKeys(-1),
		"negative in progress":           idempotency.WithMaxInProgress(-1),
		"in progress above the max keys": idempotency.WithMaxInProgress(idempotency.DefaultMaxKeys + 1),
		"negative bytes":                 idempotency.WithMaxBytes(-1),
		"negative retention":             idempotency.WithRetention(-time.Second),
		"nil":                            nil,
	} {
		if _, err := idempotency.NewMemoryStore(opt); err == nil {
			t.Errorf("%s: NewMemoryStore returned no error", name)
		}
	}
}

// TestIdempotencySlowKeyRunsOnceWhenAnswersFillStore: the memory store made
// room by dropping its oldest entries, and a claim in progress is the oldest,
// since completed answers go to the back. A slow request, a retry waiting for
// it, then 64 answers of 1 MiB (the default 64 MiB budget) forced the claim
// out, woke the retry, and the retry ran the handler beside the first.
func TestIdempotencySlowKeyRunsOnceWhenAnswersFillStore(t *testing.T) {
	t.Parallel()
	store := &watchedStore{Store: memStore(t), waiting: make(chan struct{}, 1)}
	var slowRuns atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	big := strings.Repeat("x", int(idempotency.DefaultMaxBody))
	url := idemServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(idempotency.Header) != "slow" {
			_, _ = io.WriteString(w, big)
			return
		}
		if slowRuns.Add(1) == 1 {
			close(started)
		}
		select {
		case <-release:
		case <-time.After(idemWait):
		}
		_, _ = io.WriteString(w, "slow done")
	}, service.WithMiddleware(mw(t, store)))
	c := idemClient(t)

	firstDone := make(chan idemAnswer, 1)
	go func() { firstDone <- idemDo(t, c, "POST", url+"/orders", "slow", "x") }()
	select {
	case <-started:
	case <-time.After(idemWait):
		t.Fatal("the slow request never reached the handler")
	}
	retryDone := make(chan idemAnswer, 1)
	go func() { retryDone <- idemDo(t, c, "POST", url+"/orders", "slow", "x") }()
	select {
	case <-store.waiting:
	case <-time.After(idemWait):
		t.Fatal("the retry never found the key in progress")
	}
	for i := range 64 {
		if a := idemDo(t, c, "POST", url+"/orders", "big-"+strconv.Itoa(i), "x"); a.status != http.StatusOK || len(a.body) != len(big) {
			t.Fatalf("big answer %d = %d with %d bytes", i, a.status, len(a.body))
		}
	}
	close(release)
	first, retry := <-firstDone, <-retryDone
	if n := slowRuns.Load(); n != 1 {
		t.Fatalf("the handler for the slow key ran %d times, want 1", n)
	}
	if first.body != "slow done" || retry.body != first.body || !retry.replayed() {
		t.Fatalf("first %d %q, retry %d %q replayed=%v; want the retry to replay the first",
			first.status, first.body, retry.status, retry.body, retry.replayed())
	}
}
