package service

import (
	"net/http"

	"github.com/pier-go/pier/problem"
)

// routes returns the Service's mux as the innermost handler of its stack,
// with the answers http.ServeMux writes itself turned into RFC 9457 problems:
// 404 when no route matches the path, 405 when the path's routes take other
// methods (its Allow header kept), 400 for "OPTIONS *". net/http writes them
// as text/plain, and no ServeMux hook replaces them.
//
// The mux writes nothing when a route matches, so the Service marks the
// request on its recorder as one the mux may answer, and routeRecorder, which
// wraps every route, clears the mark: a route's own answers, a 404 of its own
// included, are left alone, and a matched request costs two field writes. Only
// when the user's middleware hides the recorder (a writer without Unwrap) is
// the route looked up first, as [muxErrors] does.
func (s *Service) routes() http.Handler {
	mux := s.mux
	lookup := muxErrors(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := findRecorder(w)
		if rec == nil {
			lookup.ServeHTTP(w, r)
			return
		}
		rec.unrouted = r
		mux.ServeHTTP(w, r)
		rec.unrouted = nil
	})
}

// muxErrors returns mux with its own error answers turned into problems, as
// [Service.routes] does, for a mux whose routes do not clear the recorder's
// mark: it looks the route up (ServeMux.Handler names no pattern for the mux's
// own answers) and, when none matches, catches what the mux writes.
func muxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			w = &unroutedWriter{ResponseWriter: w, r: r}
		}
		mux.ServeHTTP(w, r)
	})
}

// writeMuxError writes the problem that replaces the mux's own answer with
// status code to r: a 404, a 405 (whose Allow header the mux has set) or a
// 400.
func writeMuxError(w http.ResponseWriter, r *http.Request, code int) {
	p := problem.Problem{Status: code}
	switch code {
	case http.StatusNotFound:
		p.Detail = "no route matches the path"
	case http.StatusMethodNotAllowed:
		// net/http has checked that the method is a token.
		p.Detail = "method " + r.Method + " is not allowed for the path; the Allow header lists the methods that are"
	}
	problem.Write(w, r, p)
}

// unroutedWriter catches the error answer the mux writes for r when no route
// matched it, and writes the problem in its place.
type unroutedWriter struct {
	http.ResponseWriter
	r *http.Request // nil once answered
}

// WriteHeader replaces an error status with the problem; redirects pass.
func (u *unroutedWriter) WriteHeader(code int) {
	if u.r == nil || code < 400 {
		u.ResponseWriter.WriteHeader(code)
		return
	}
	r := u.r
	u.r = nil
	writeMuxError(u.ResponseWriter, r, code)
	u.ResponseWriter = bodyless{u.ResponseWriter}
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (u *unroutedWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// bodyless drops what the mux writes after its answer was replaced by a
// problem: net/http's text.
type bodyless struct{ http.ResponseWriter }

func (bodyless) WriteHeader(int)               {}
func (bodyless) Write([]byte) (int, error)     { return 0, http.ErrBodyNotAllowed }
func (b bodyless) Unwrap() http.ResponseWriter { return b.ResponseWriter }
