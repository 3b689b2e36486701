package health

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/pier-go/pier/problem"
)

// The bodies of the 200 answers of the liveness and readiness endpoints.
const (
	bodyPass = `{"status":"pass"}` + "\n"
	bodyWarn = `{"status":"warn"}` + "\n"
)

// LiveHandler returns the liveness handler, mounted at GET /health/live. It
// answers 200 {"status":"pass"} in every state and never runs a check: while the
// process can serve it, it is alive. Other methods than GET and HEAD get 405. The
// handler is safe for concurrent use.
func (m *Monitor) LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(w, r) {
			return
		}
		writeBody(w, r, http.StatusOK, bodyPass)
	})
}

// HandlerOption configures the handlers of [Monitor.ReadyHandler] and
// [Monitor.DetailHandler].
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	errors bool
}

// WithCheckErrors makes a handler show each check's error message, and in
// [Monitor.DetailHandler] its criticality, duration and time as well. Error
// messages can name internal hosts, addresses and database errors, so serve
// such a handler only where the public cannot reach it: an admin listener, or
// a route behind authentication. By default the handlers show each check's
// name and status alone.
func WithCheckErrors() HandlerOption {
	return func(c *handlerConfig) { c.errors = true }
}

func handlerOptions(opts []HandlerOption) handlerConfig {
	var c handlerConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// ReadyHandler returns the readiness handler, mounted at GET /health/ready. In
// [StateServing] it runs the checks (see [Monitor.Report]) and answers 200
// {"status":"pass"}, or {"status":"warn"} when only non-critical checks fail. It
// answers 503 with an RFC 9457 problem (application/problem+json) when a critical
// check fails, its detail naming each failing check ("critical check failing:
// db"), and at once, without running checks, in any other state, its detail
// "service is starting" or "service is draining". The problem has an extension
// member "state". With [WithCheckErrors] the detail adds each failing check's
// error ("critical check failing: db: connection refused"); without it the
// answer is safe to serve publicly. Other methods than GET and HEAD get 405.
// The handler is safe for concurrent use.
func (m *Monitor) ReadyHandler(opts ...HandlerOption) http.Handler {
	cfg := handlerOptions(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(w, r) {
			return
		}
		if s := m.State(); s != StateServing {
			notReady(w, r, s, "service is "+s.String())
			return
		}
		rep := m.Report(r.Context())
		switch {
		case rep.State != StateServing: // it changed while the checks ran
			notReady(w, r, rep.State, "service is "+rep.State.String())
		case !rep.Ready:
			notReady(w, r, rep.State, failing(rep.Checks, cfg.errors))
		case rep.Status == StatusWarn:
			writeBody(w, r, http.StatusOK, bodyWarn)
		default:
			writeBody(w, r, http.StatusOK, bodyPass)
		}
	})
}

// DetailHandler returns the detail handler, mounted at GET /health. It runs the
// checks in every state and answers the [Report] as JSON (application/json), with
// status 200 when the instance is ready and 503 otherwise. By default each
// check shows its name and status alone, which is safe to serve publicly:
//
//	{"status":"fail","state":"serving","ready":false,"checks":[{"name":"db","status":"fail"}]}
//
// With [WithCheckErrors] the checks are shown in full, errors included (see
// [Report]). Other methods than GET and HEAD get 405. The handler is safe for
// concurrent use.
func (m *Monitor) DetailHandler(opts ...HandlerOption) http.Handler {
	cfg := handlerOptions(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(w, r) {
			return
		}
		rep := m.Report(r.Context())
		var body []byte
		var err error
		if cfg.errors {
			body, err = json.Marshal(rep)
		} else {
			body, err = json.Marshal(publicReport(rep))
		}
		if err != nil { // only strings, numbers and times: cannot happen
			problem.Status(w, r, http.StatusInternalServerError, "the health report could not be encoded")
			return
		}
		code := http.StatusOK
		if !rep.Ready {
			code = http.StatusServiceUnavailable
		}
		writeBody(w, r, code, string(append(body, '\n')))
	})
}

// publicResult is what the public detail shows of a check.
type publicResult struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
}

// publicReportJSON is the public form of a Report: the verdict, and each
// check's name and status.
type publicReportJSON struct {
	Status Status         `json:"status"`
	State  State          `json:"state"`
	Ready  bool           `json:"ready"`
	Checks []publicResult `json:"checks"`
}

func publicReport(rep Report) publicReportJSON {
	out := publicReportJSON{Status: rep.Status, State: rep.State, Ready: rep.Ready,
		Checks: make([]publicResult, len(rep.Checks))}
	for i, c := range rep.Checks {
		out.Checks[i] = publicResult{Name: c.Name, Status: c.Status}
	}
	return out
}

// failing describes the failing critical checks of an unready report: their
// names, and their errors when withErrors is set.
func failing(results []Result, withErrors bool) string {
	var b strings.Builder
	n := 0
	for _, r := range results {
		if r.Status != StatusFail {
			continue
		}
		if n > 0 {
			b.WriteString("; ")
		}
		n++
		b.WriteString(r.Name)
		if withErrors {
			b.WriteString(": ")
			b.WriteString(r.Error)
		}
	}
	if n == 1 {
		return "critical check failing: " + b.String()
	}
	return "critical checks failing: " + b.String()
}

func notReady(w http.ResponseWriter, r *http.Request, s State, detail string) {
	problem.Write(w, r, problem.Problem{
		Status: http.StatusServiceUnavailable,
		Detail: detail,
		Extra:  map[string]any{"state": s},
	})
}

// allowed answers 405 to methods other than GET and HEAD and reports whether r may
// go on.
func allowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	problem.Status(w, r, http.StatusMethodNotAllowed, "health endpoints answer GET and HEAD only")
	return false
}

// writeBody sends a JSON body with the headers every health answer carries; HEAD
// gets the headers alone.
func writeBody(w http.ResponseWriter, r *http.Request, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body) // the client has gone if this fails; nothing to do
	}
}
