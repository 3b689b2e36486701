package web

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/pier-go/pier/problem"
)

// Fail answers r with an RFC 9457 problem: status, detail, and extra members.
func Fail(w http.ResponseWriter, r *http.Request, status int, detail string, extra ...any) {
	p := problem.Problem{Status: status, Detail: detail}
	if len(extra) > 0 {
		p.Extra = make(map[string]any, len(extra)/2)
		for i := 0; i+1 < len(extra); i += 2 {
			p.Extra[extra[i].(string)] = extra[i+1]
		}
	}
	problem.Write(w, r, p)
}

// RetryAfter is the Retry-After the shop sends with a 503 whose cause should
// pass soon: a dependency restarting, a breaker about to let a trial through.
// pier's client honours it (up to 10 s) when it retries, so it is short: the
// gateway retries a keyed order after it, twice, and a blip shorter than that
// never reaches the client.
const RetryAfter = time.Second

// Unavailable answers 503 with Retry-After and detail.
func Unavailable(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
	Fail(w, r, http.StatusServiceUnavailable, detail)
}

// Internal logs err on log, with the request's IDs, and answers 500 without
// telling the caller more than the request ID.
func Internal(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	log.ErrorContext(r.Context(), "request failed", "error", err)
	Fail(w, r, http.StatusInternalServerError, "an internal error occurred; the request ID identifies it in the logs")
}
