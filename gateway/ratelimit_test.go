package gateway_test

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pier-go/pier/gateway"
)

// serve calls the gateway in process, as a client at remote.
func serve(g http.Handler, method, target, remote string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

// TestRateLimitAdmitsRatePlusBurst: at 100 requests a second with a burst
// of 50, over 5 s of the injected clock with requests every millisecond, the
// gateway admits 500 + 50 within 5%.
func TestRateLimitAdmitsRatePlusBurst(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, []gateway.Route{{Name: "api", Prefix: "/api", Service: "api", Auth: gateway.AuthNone,
		RateLimit: &gateway.RateLimit{Rate: 100, Burst: 50}}}, gateway.WithClock(clock.Now))
	admitted, limited := 0, 0
	for range 5000 {
		w := serve(e.gw, "GET", "/api/x", "192.0.2.1:1234")
		switch w.Code {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		clock.Add(time.Millisecond)
	}
	want := 500.0 + 50
	if math.Abs(float64(admitted)-want) > want*0.05 {
		t.Fatalf("admitted %d over 5 s, want %v within 5%%", admitted, want)
	}
	if n := len(e.up["api"].requests()); n != admitted {
		t.Fatalf("upstream got %d, admitted %d", n, admitted)
	}
	t.Logf("admitted %d, limited %d", admitted, limited)
}

// TestRateLimitAnswer: a 429 is a problem with Retry-After and the IETF
// RateLimit-Policy and RateLimit headers (draft-ietf-httpapi-ratelimit-headers);
// admitted answers carry the headers too.
func TestRateLimitAnswer(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, []gateway.Route{{Name: "api", Prefix: "/api", Service: "api", Auth: gateway.AuthNone,
		RateLimit: &gateway.RateLimit{Rate: 0.5, Burst: 2}}}, gateway.WithClock(clock.Now))
	w := serve(e.gw, "GET", "/api/x", "192.0.2.1:1")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if g := w.Header().Get("RateLimit-Policy"); g != `"api";q=2;w=4` {
		t.Errorf("RateLimit-Policy %q", g)
	}
	if g := w.Header().Get("RateLimit"); g != `"api";r=1;t=2` {
		t.Errorf("RateLimit %q", g)
	}
	serve(e.gw, "GET", "/api/x", "192.0.2.1:1")
	w = serve(e.gw, "GET", "/api/x", "192.0.2.1:1")
	wantProblem(t, w.Result(), w.Body.String(), http.StatusTooManyRequests)
	if g := w.Header().Get("Retry-After"); g != "2" {
		t.Errorf("Retry-After %q, want 2", g)
	}
	if g := w.Header().Get("RateLimit"); !regexp.MustCompile(`^"api";r=0;t=\d+$`).MatchString(g) {
		t.Errorf("RateLimit %q", g)
	}
	clock.Add(2 * time.Second)
	if w := serve(e.gw, "GET", "/api/x", "192.0.2.1:1"); w.Code != http.StatusOK {
		t.Fatalf("after Retry-After: status %d", w.Code)
	}
}

// TestRateLimitKeys: IPv6 clients are counted by /64, so one host cannot
// dodge its limit by changing its interface ID; distinct keys have distinct
// buckets; an API key header is a key of its own.
func TestRateLimitKeys(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, []gateway.Route{
		{Name: "ip", Prefix: "/ip", Service: "api", Auth: gateway.AuthNone, RateLimit: &gateway.RateLimit{Rate: 1, Burst: 1, Key: gateway.RateKeyIP}},
		{Name: "key", Prefix: "/key", Service: "api", Auth: gateway.AuthNone,
			RateLimit: &gateway.RateLimit{Rate: 1, Burst: 1, Key: gateway.RateKeyHeader, Header: "X-API-Key"}},
	}, gateway.WithClock(clock.Now))
	steps := []struct {
		path, remote, apiKey string
		want                 int
	}{
		{"/ip/x", "[2001:db8:1:2::1]:1", "", 200},
		{"/ip/x", "[2001:db8:1:2::ffff:9]:1", "", 429}, // same /64
		{"/ip/x", "[2001:db8:1:3::1]:1", "", 200},      // next /64
		{"/ip/x", "192.0.2.1:1", "", 200},
		{"/ip/x", "192.0.2.2:1", "", 200},
		{"/ip/x", "192.0.2.1:2", "", 429},
		{"/key/x", "192.0.2.1:1", "k1", 200},
		{"/key/x", "192.0.2.9:1", "k1", 429}, // the key, not the address
		{"/key/x", "192.0.2.1:1", "k2", 200},
		{"/key/x", "192.0.2.1:1", "", 200}, // no key: by address, a bucket of its own
	}
	for i, s := range steps {
		var h []string
		if s.apiKey != "" {
			h = []string{"X-API-Key", s.apiKey}
		}
		if w := serve(e.gw, "GET", s.path, s.remote, h...); w.Code != s.want {
			t.Fatalf("step %d %+v: status %d", i, s, w.Code)
		}
	}
}

// TestRateLimitSurvivesSwap: a route keeps its buckets across SetRoutes when
// its name and limit stay, so a swap cannot be used to reset limits.
func TestRateLimitSurvivesSwap(t *testing.T) {
	clock := newFakeClock()
	routes := []gateway.Route{{Name: "api", Prefix: "/api", Service: "api", Auth: gateway.AuthNone,
		RateLimit: &gateway.RateLimit{Rate: 1, Burst: 1}}}
	e := newEnv(t, routes, gateway.WithClock(clock.Now))
	if w := serve(e.gw, "GET", "/api/x", "192.0.2.1:1"); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if err := e.gw.SetRoutes(append(routes, gateway.Route{Name: "b", Prefix: "/b", Service: "api", Auth: gateway.AuthNone})); err != nil {
		t.Fatal(err)
	}
	if w := serve(e.gw, "GET", "/api/x", "192.0.2.1:1"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after the swap: status %d, want 429", w.Code)
	}
}

// TestUpstreamRateLimitHeaderCorruptsTheGatewaysPolicy: every admitted answer
// carries the route's RateLimit-Policy value, one the responses share. An
// upstream that sends a RateLimit-Policy of its own has it added beside the
// gateway's, answer by answer; it must never be written into the shared
// value, where concurrent answers would overwrite each other's (the race
// detector, and the values each answer ends up with, show it).
func TestUpstreamRateLimitHeaderCorruptsTheGatewaysPolicy(t *testing.T) {
	e := newEnv(t, []gateway.Route{{Name: "api", Prefix: "/api", Service: "api", Auth: gateway.AuthNone,
		RateLimit: &gateway.RateLimit{Rate: 1e6, Burst: 1e6}}})
	e.up["api"].set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Policy", `"upstream-`+r.URL.Query().Get("n")+`";q=1;w=1`)
	})
	var wg sync.WaitGroup
	errs := make(chan string, 160)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				n := strconv.Itoa(g*20 + i)
				w := serve(e.gw, "GET", "/api/x?n="+n, "192.0.2.1:1234")
				got := w.Header().Values("RateLimit-Policy")
				if want := []string{`"api";q=1000000;w=1`, `"upstream-` + n + `";q=1;w=1`}; !slices.Equal(got, want) {
					errs <- fmt.Sprintf("answer %s: RateLimit-Policy %q, want %q", n, got, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
