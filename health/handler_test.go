package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pier-go/pier/health"
)

// entry is a check to add in a table test.
type entry struct {
	name string
	c    health.Checker
	opts []health.CheckOption
}

// counter is a Checker that counts its calls and returns err.
type counter struct {
	calls atomic.Int32
	err   error
}

func (c *counter) Check(context.Context) error {
	c.calls.Add(1)
	return c.err
}

func passing() *counter               { return &counter{} }
func failingWith(msg string) *counter { return &counter{err: errors.New(msg)} }

// newMonitor returns a Monitor in state with the given checks.
func newMonitor(tb testing.TB, state health.State, checks []entry, opts ...health.Option) *health.Monitor {
	tb.Helper()
	m := mustNew(tb, opts...)
	for _, e := range checks {
		if err := m.Add(e.name, e.c, e.opts...); err != nil {
			tb.Fatalf("Add(%q): %v", e.name, err)
		}
	}
	m.SetState(state)
	return m
}

// serve sends one request to h and returns the recorded answer.
func serve(tb testing.TB, h http.Handler, method, target string) *httptest.ResponseRecorder {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

// checkHeaders asserts the headers every health answer carries.
func checkHeaders(t *testing.T, rec *httptest.ResponseRecorder, wantType string) {
	t.Helper()
	if got := rec.Header().Get("Content-Type"); got != wantType {
		t.Errorf("Content-Type = %q, want %q", got, wantType)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}

func TestLiveHandler(t *testing.T) {
	t.Parallel()
	for _, state := range []health.State{health.StateStarting, health.StateServing, health.StateDraining} {
		t.Run(state.String(), func(t *testing.T) {
			t.Parallel()
			db := failingWith("connection refused")
			m := newMonitor(t, state, []entry{{name: "db", c: db}})
			rec := serve(t, m.LiveHandler(), http.MethodGet, "/health/live")
			if rec.Code != http.StatusOK {
				t.Errorf("status = %d, want 200", rec.Code)
			}
			if got, want := rec.Body.String(), `{"status":"pass"}`+"\n"; got != want {
				t.Errorf("body = %q, want %q", got, want)
			}
			checkHeaders(t, rec, "application/json")
			if n := db.calls.Load(); n != 0 {
				t.Errorf("liveness ran the check %d times, want 0", n)
			}
		})
	}
}

func TestReadyHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		state      health.State
		checks     func() []entry
		wantCode   int
		wantBody   string   // for 200
		withErrors bool     // serve it WithCheckErrors
		wantDetail []string // substrings of the problem detail, for 503
		wantCalls  int32    // calls of each check
	}{
		{
			name:       "starting",
			state:      health.StateStarting,
			checks:     func() []entry { return []entry{{name: "db", c: passing()}} },
			wantCode:   http.StatusServiceUnavailable,
			wantDetail: []string{"starting"},
			wantCalls:  0,
		},
		{
			name:       "draining",
			state:      health.StateDraining,
			checks:     func() []entry { return []entry{{name: "db", c: passing()}} },
			wantCode:   http.StatusServiceUnavailable,
			wantDetail: []string{"draining"},
			wantCalls:  0,
		},
		{
			name:     "serving without checks",
			state:    health.StateServing,
			checks:   func() []entry { return nil },
			wantCode: http.StatusOK,
			wantBody: `{"status":"pass"}` + "\n",
		},
		{
			name:  "serving with passing checks",
			state: health.StateServing,
			checks: func() []entry {
				return []entry{{name: "db", c: passing()}, {name: "queue", c: passing()}}
			},
			wantCode:  http.StatusOK,
			wantBody:  `{"status":"pass"}` + "\n",
			wantCalls: 1,
		},
		{
			name:  "critical check fails",
			state: health.StateServing,
			checks: func() []entry {
				return []entry{{name: "db", c: failingWith("connection refused")}, {name: "queue", c: passing()}}
			},
			wantCode:   http.StatusServiceUnavailable,
			wantDetail: []string{"critical check failing: db"},
			wantCalls:  1,
		},
		{
			name:  "critical check fails, with errors",
			state: health.StateServing,
			checks: func() []entry {
				return []entry{{name: "db", c: failingWith("connection refused")}, {name: "queue", c: passing()}}
			},
			withErrors: true,
			wantCode:   http.StatusServiceUnavailable,
			wantDetail: []string{"critical check failing: db: connection refused"},
			wantCalls:  1,
		},
		{
			name:  "two critical checks fail",
			state: health.StateServing,
			checks: func() []entry {
				return []entry{{name: "db", c: failingWith("refused")}, {name: "queue", c: failingWith("no route")}}
			},
			wantCode:   http.StatusServiceUnavailable,
			wantDetail: []string{"critical checks failing: db; queue"},
			wantCalls:  1,
		},
		{
			name:  "two critical checks fail, with errors",
			state: health.StateServing,
			checks: func() []entry {
				return []entry{{name: "db", c: failingWith("refused")}, {name: "queue", c: failingWith("no route")}}
			},
			withErrors: true,
			wantCode:   http.StatusServiceUnavailable,
			wantDetail: []string{"critical checks failing: db: refused; queue: no route"},
			wantCalls:  1,
		},
		{
			name:  "only non-critical check fails",
			state: health.StateServing,
			checks: func() []entry {
				return []entry{
					{name: "db", c: passing()},
					{name: "cache", c: failingWith("evicted"), opts: []health.CheckOption{health.NonCritical()}},
				}
			},
			wantCode:  http.StatusOK,
			wantBody:  `{"status":"warn"}` + "\n",
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checks := tt.checks()
			m := newMonitor(t, tt.state, checks)
			h := m.ReadyHandler()
			if tt.withErrors {
				h = m.ReadyHandler(health.WithCheckErrors())
			}
			rec := serve(t, h, http.MethodGet, "/health/ready")
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.wantCode, rec.Body)
			}
			for _, e := range checks {
				if n := e.c.(*counter).calls.Load(); n != tt.wantCalls {
					t.Errorf("check %q ran %d times, want %d", e.name, n, tt.wantCalls)
				}
			}
			if tt.wantCode == http.StatusOK {
				checkHeaders(t, rec, "application/json")
				if got := rec.Body.String(); got != tt.wantBody {
					t.Errorf("body = %q, want %q", got, tt.wantBody)
				}
				return
			}
			checkHeaders(t, rec, "application/problem+json")
			var p struct {
				Title  string `json:"title"`
				Status int    `json:"status"`
				Detail string `json:"detail"`
				State  string `json:"state"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("problem body %q: %v", rec.Body, err)
			}
			if p.Status != http.StatusServiceUnavailable || p.Title != "Service Unavailable" {
				t.Errorf("problem status, title = %d, %q; want 503, Service Unavailable", p.Status, p.Title)
			}
			if p.State != tt.state.String() {
				t.Errorf("problem state = %q, want %q", p.State, tt.state)
			}
			for _, want := range tt.wantDetail {
				if !strings.Contains(p.Detail, want) {
					t.Errorf("problem detail = %q, want it to contain %q", p.Detail, want)
				}
			}

		})
	}
}

// TestDetailHandler serves the detail WithCheckErrors, in full.
func TestDetailHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		state    health.State
		wantCode int
		want     health.Report
	}{
		{
			name:     "serving",
			state:    health.StateServing,
			wantCode: http.StatusOK,
			want: health.Report{Status: health.StatusWarn, State: health.StateServing, Ready: true, Checks: []health.Result{
				{Name: "db", Critical: true, Status: health.StatusPass},
				{Name: "cache", Critical: false, Status: health.StatusWarn, Error: "evicted"},
			}},
		},
		{
			name:     "draining",
			state:    health.StateDraining,
			wantCode: http.StatusServiceUnavailable,
			want: health.Report{Status: health.StatusFail, State: health.StateDraining, Ready: false, Checks: []health.Result{
				{Name: "db", Critical: true, Status: health.StatusPass},
				{Name: "cache", Critical: false, Status: health.StatusWarn, Error: "evicted"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMonitor(t, tt.state, []entry{
				{name: "db", c: passing()},
				{name: "cache", c: failingWith("evicted"), opts: []health.CheckOption{health.NonCritical()}},
			})
			rec := serve(t, m.DetailHandler(health.WithCheckErrors()), http.MethodGet, "/health")
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			checkHeaders(t, rec, "application/json")

			var got health.Report
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("decode %s: %v", rec.Body, err)
			}
			ignore := cmpopts.IgnoreFields(health.Result{}, "Duration", "CheckedAt")
			if diff := cmp.Diff(tt.want, got, ignore); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			for _, r := range got.Checks {
				if r.CheckedAt.IsZero() {
					t.Errorf("check %q: checked_at missing", r.Name)
				}
			}

			// The wire keys, as a client in another language sees them.
			var raw struct {
				Status string           `json:"status"`
				State  string           `json:"state"`
				Ready  bool             `json:"ready"`
				Checks []map[string]any `json:"checks"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
				t.Fatal(err)
			}
			if raw.State != tt.state.String() {
				t.Errorf("state = %q, want %q", raw.State, tt.state)
			}
			if len(raw.Checks) != 2 {
				t.Fatalf("got %d checks, want 2", len(raw.Checks))
			}
			for _, key := range []string{"name", "critical", "status", "duration_ms", "checked_at"} {
				for i, c := range raw.Checks {
					if _, ok := c[key]; !ok {
						t.Errorf("checks[%d] has no %q key: %v", i, key, c)
					}
				}
			}
			if _, ok := raw.Checks[0]["duration_ms"].(float64); !ok {
				t.Errorf("duration_ms = %#v, want a number", raw.Checks[0]["duration_ms"])
			}
			if _, ok := raw.Checks[0]["error"]; ok {
				t.Errorf("passing check has an error key: %v", raw.Checks[0])
			}
			if got := raw.Checks[1]["error"]; got != "evicted" {
				t.Errorf("failing check error = %v, want evicted", got)
			}
		})
	}
}

// TestPublicHandlersLeakedCheckErrors: the readiness and detail handlers
// showed each check's error, which can name internal hosts and database
// errors, to whoever could reach them, the public included. By default they
// now show each check's name and status alone.
func TestPublicHandlersLeakedCheckErrors(t *testing.T) {
	t.Parallel()
	const secret = "dial tcp 10.0.0.7:5432: connection refused"
	m := newMonitor(t, health.StateServing, []entry{
		{name: "db", c: failingWith(secret)},
		{name: "cache", c: failingWith("redis 10.0.0.9:6379: i/o timeout"), opts: []health.CheckOption{health.NonCritical()}},
		{name: "queue", c: passing()},
	})
	rec := serve(t, m.ReadyHandler(), http.MethodGet, "/health/ready")
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "10.0.0.") {
		t.Errorf("ready = %d %s, want 503 without the checks' errors", rec.Code, rec.Body)
	}
	rec = serve(t, m.DetailHandler(), http.MethodGet, "/health")
	want := `{"status":"fail","state":"serving","ready":false,"checks":[` +
		`{"name":"db","status":"fail"},{"name":"cache","status":"warn"},{"name":"queue","status":"pass"}]}` + "\n"
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != want {
		t.Errorf("detail = %d %s, want 503 %s", rec.Code, rec.Body, want)
	}
	checkHeaders(t, rec, "application/json")
}

func TestDetailHandlerNoChecks(t *testing.T) {
	t.Parallel()
	m := newMonitor(t, health.StateServing, nil)
	rec := serve(t, m.DetailHandler(), http.MethodGet, "/health")
	want := `{"status":"pass","state":"serving","ready":true,"checks":[]}` + "\n"
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("got %d %q, want 200 %q", rec.Code, rec.Body, want)
	}
}

func TestHandlersHEAD(t *testing.T) {
	t.Parallel()
	m := newMonitor(t, health.StateServing, []entry{{name: "db", c: passing()}})
	tests := []struct {
		name     string
		h        http.Handler
		wantCode int
	}{
		{"live", m.LiveHandler(), http.StatusOK},
		{"ready", m.ReadyHandler(), http.StatusOK},
		{"detail", m.DetailHandler(), http.StatusOK},
		{"detail with errors", m.DetailHandler(health.WithCheckErrors()), http.StatusOK},
		{"ready while draining", newMonitor(t, health.StateDraining, nil).ReadyHandler(), http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, tt.h, http.MethodHead, "/health")
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			if rec.Body.Len() != 0 {
				t.Errorf("HEAD got a body: %q", rec.Body)
			}
			if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Length") == "" {
				t.Errorf("headers = %v, want Cache-Control and Content-Length", rec.Header())
			}
		})
	}
}

func TestHandlersRejectOtherMethods(t *testing.T) {
	t.Parallel()
	m := newMonitor(t, health.StateServing, nil)
	for name, h := range map[string]http.Handler{"live": m.LiveHandler(), "ready": m.ReadyHandler(), "detail": m.DetailHandler()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, h, http.MethodPost, "/health")
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("status = %d, want 405", rec.Code)
			}
			if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
				t.Errorf("Allow = %q, want GET, HEAD", got)
			}
			checkHeaders(t, rec, "application/problem+json")
		})
	}
}

// mustNew returns health.New(opts...), failing the test on an error.
func mustNew(tb testing.TB, opts ...health.Option) *health.Monitor {
	tb.Helper()
	m, err := health.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
