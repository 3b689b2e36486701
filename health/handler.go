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

// ReadyHandler returns the readiness handler, mounted at GET /health/ready. In
// [StateServing] it runs the checks (see [Monitor.Report]) and answers 200
// {"status":"pass"}, or {"status":"warn"} when only non-critical checks fail. It
// answers 503 with an RFC 9457 problem (application/problem+json) when a critical
// check fails, its detail naming each failing check and its error, and at once,
// without running checks, in any other state, its detail "service is starting" or
// "service is draining". The problem has an extension member "state". Other
// methods than GET and HEAD get 405. The handler is safe for concurrent use.
func (m *Monitor) ReadyHandler() http.Handler {
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
			notReady(w, r, rep.State, failing(rep.Checks))
		case rep.Status == StatusWarn:
			writeBody(w, r, http.StatusOK, bodyWarn)
		default:
			writeBody(w, r, http.StatusOK, bodyPass)
		}
	})
}

// DetailHandler returns the detail handler, mounted at GET /health. It runs the
// checks in every state and answers the [Report] as JSON (application/json), with
// status 200 when the instance is ready and 503 otherwise. Other methods than GET
// and HEAD get 405. The handler is safe for concurrent use.
func (m *Monitor) DetailHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(w, r) {
			return
		}
		rep := m.Report(r.Context())
		body, err := json.Marshal(rep)
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

// failing describes the failing critical checks of an unready report.
func failing(results []Result) string {
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
		b.WriteString(": ")
		b.WriteString(r.Error)
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
