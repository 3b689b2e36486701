// Package pprofhttp serves the runtime's profiles over HTTP, as net/http/pprof
// does, without its side effect: importing net/http/pprof registers its
// handlers on http.DefaultServeMux, which would expose them on any server a
// program runs with a nil handler. Here nothing is registered until [Register]
// is called with a mux of the caller's.
//
// The paths and parameters are net/http/pprof's, so `go tool pprof` works
// against them unchanged:
//
//	/debug/pprof/                  index of the profiles
//	/debug/pprof/<name>            a named profile (heap, goroutine, allocs, block, mutex,
//	                               threadcreate); ?debug=N for text, ?gc=1 to collect first (heap)
//	/debug/pprof/profile?seconds=N CPU profile, 30 s by default
//	/debug/pprof/trace?seconds=N   execution trace, 1 s by default
//	/debug/pprof/cmdline           the command line, NUL-separated
//	/debug/pprof/symbol            program counters to function names
//
// Delta profiles (?seconds= on a named profile) are not supported: they need
// net/http/pprof's internal profile parser. Fetch two profiles and compare
// them with `go tool pprof -base` instead.
package pprofhttp

import (
	"bufio"
	"bytes"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Prefix is the path under which Register mounts the handlers.
const Prefix = "/debug/pprof/"

// Register mounts the profile handlers on mux under [Prefix]. They answer GET
// (and HEAD); /debug/pprof/symbol also answers POST, as `go tool pprof` sends
// it.
func Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix, index)
	mux.HandleFunc("GET "+Prefix+"cmdline", cmdline)
	mux.HandleFunc("GET "+Prefix+"profile", profile)
	mux.HandleFunc("GET "+Prefix+"symbol", symbol)
	mux.HandleFunc("POST "+Prefix+"symbol", symbol)
	mux.HandleFunc("GET "+Prefix+"trace", traceHandler)
}

func cmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, strings.Join(os.Args, "\x00"))
}

// sleep waits d or until the request ends, whichever comes first.
func sleep(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// extendWriteDeadline makes room for a profile that takes seconds to collect
// on a server with a WriteTimeout.
func extendWriteDeadline(w http.ResponseWriter, r *http.Request, seconds float64) {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if ok && srv.WriteTimeout > 0 {
		timeout := srv.WriteTimeout + time.Duration(seconds*float64(time.Second))
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout))
	}
}

func serveError(w http.ResponseWriter, status int, txt string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Go-Pprof", "1")
	h.Del("Content-Disposition")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, txt)
}

// profile serves a CPU profile of the given seconds, 30 by default.
func profile(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	sec, err := strconv.ParseInt(r.FormValue("seconds"), 10, 64)
	if sec <= 0 || err != nil {
		sec = 30
	}
	extendWriteDeadline(w, r, float64(sec))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="profile"`)
	if err := pprof.StartCPUProfile(w); err != nil {
		serveError(w, http.StatusInternalServerError, "could not enable CPU profiling: "+err.Error())
		return
	}
	sleep(r, time.Duration(sec)*time.Second)
	pprof.StopCPUProfile()
}

// traceHandler serves an execution trace of the given seconds, 1 by default.
func traceHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	sec, err := strconv.ParseFloat(r.FormValue("seconds"), 64)
	if sec <= 0 || err != nil {
		sec = 1
	}
	extendWriteDeadline(w, r, sec)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="trace"`)
	if err := trace.Start(w); err != nil {
		serveError(w, http.StatusInternalServerError, "could not enable tracing: "+err.Error())
		return
	}
	sleep(r, time.Duration(sec*float64(time.Second)))
	trace.Stop()
}

// symbol maps the program counters in the query or the POST body, separated
// by '+', to function names.
func symbol(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var buf bytes.Buffer // the whole body is read before anything is written
	buf.WriteString("num_symbols: 1\n")
	var b *bufio.Reader
	if r.Method == http.MethodPost {
		b = bufio.NewReader(http.MaxBytesReader(w, r.Body, 1<<20))
	} else {
		b = bufio.NewReader(strings.NewReader(r.URL.RawQuery))
	}
	for {
		word, err := b.ReadSlice('+')
		if err == nil {
			word = word[:len(word)-1]
		}
		if pc, _ := strconv.ParseUint(string(word), 0, 64); pc != 0 {
			if f := runtime.FuncForPC(uintptr(pc)); f != nil {
				fmt.Fprintf(&buf, "%#x %s\n", pc, f.Name())
			}
		}
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(&buf, "reading request: %v\n", err)
			}
			break
		}
	}
	_, _ = w.Write(buf.Bytes())
}

// index serves a named profile, or the list of them at the prefix itself.
func index(w http.ResponseWriter, r *http.Request) {
	if name := strings.TrimPrefix(r.URL.Path, Prefix); name != "" && name != r.URL.Path {
		named(w, r, name)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	type entry struct {
		name  string
		count int
	}
	var entries []entry
	for _, p := range pprof.Profiles() {
		entries = append(entries, entry{p.Name(), p.Count()})
	}
	for _, n := range []string{"cmdline", "profile", "symbol", "trace"} {
		entries = append(entries, entry{n, 0})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var b bytes.Buffer
	b.WriteString("<html><head><title>/debug/pprof/</title></head><body>\n/debug/pprof/<br>\n" +
		"<p>Set debug=1 as a query parameter to export in legacy text format</p>\n<table>\n" +
		"<thead><td>Count</td><td>Profile</td></thead>\n")
	for _, e := range entries {
		n := html.EscapeString(e.name)
		fmt.Fprintf(&b, "<tr><td>%d</td><td><a href='%s?debug=1'>%s</a></td></tr>\n", e.count, n, n)
	}
	b.WriteString("</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n</body></html>\n")
	_, _ = w.Write(b.Bytes())
}

// named serves the runtime/pprof profile called name.
func named(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := pprof.Lookup(name)
	if p == nil {
		serveError(w, http.StatusNotFound, "unknown profile")
		return
	}
	if r.FormValue("seconds") != "" {
		serveError(w, http.StatusBadRequest,
			"delta profiles are not supported: fetch two profiles and compare them with go tool pprof -base")
		return
	}
	if gc, _ := strconv.Atoi(r.FormValue("gc")); name == "heap" && gc > 0 {
		runtime.GC()
	}
	debug, _ := strconv.Atoi(r.FormValue("debug"))
	if debug != 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	_ = p.WriteTo(w, debug)
}
