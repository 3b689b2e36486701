package resilience_test

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"

	"github.com/pier-go/pier/resilience"
)

func TestShedAboveTheLimit(t *testing.T) {
	t.Parallel()
	const limit, extra = 2, 4
	arrived := make(chan struct{}, limit+extra)
	release := make(chan struct{})
	var shed atomic.Int64
	h := resilience.Shed(resilience.WithShedLimiter(adaptivelimiter.NewBuilder[*http.Response]().WithLimits(limit, limit, limit).Build()),
		resilience.WithOnShed(func(*http.Request) { shed.Add(1) }))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-release
			w.Write([]byte("done"))
		}))
	srv := newServer(t, h)
	rt := newTransport(t)

	type result struct {
		code int
		resp *http.Response
		body string
	}
	send := func(results chan<- result) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Error(err)
			results <- result{}
			return
		}
		code, body := readAll(t, resp)
		results <- result{code, resp, body}
	}
	admitted := make(chan result, limit)
	for range limit {
		go send(admitted)
	}
	for range limit {
		recv(t, arrived, "an admitted request")
	}
	rejected := make(chan result, extra)
	for range extra {
		go send(rejected)
	}
	for range extra {
		r := recv(t, rejected, "a shed request")
		if r.code != http.StatusServiceUnavailable {
			t.Fatalf("status %d above the limit, want 503", r.code)
		}
		if got := r.resp.Header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After %q, want %q", got, "1")
		}
		if got := r.resp.Header.Get("Content-Type"); got != "application/problem+json" {
			t.Errorf("Content-Type %q, want application/problem+json", got)
		}
		var p struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		if err := json.Unmarshal([]byte(r.body), &p); err != nil || p.Status != 503 || p.Title != "Service Unavailable" {
			t.Errorf("body %q (%v), want a 503 problem", r.body, err)
		}
	}
	close(release)
	for range limit {
		if r := recv(t, admitted, "an admitted response"); r.code != 200 || r.body != "done" {
			t.Fatalf("admitted request got %d %q, want 200", r.code, r.body)
		}
	}
	if shed.Load() != extra {
		t.Fatalf("WithOnShed saw %d sheds, want %d", shed.Load(), extra)
	}
	// The limit frees up once the admitted requests are done.
	if code, _ := get(t, rt, srv.URL+"/again"); code != 200 {
		t.Fatalf("status %d after the load passed, want 200", code)
	}
}
