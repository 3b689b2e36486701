package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// corsPolicy is a route's CORS, ready for per-request use.
type corsPolicy struct {
	anyOrigin   bool
	origins     map[string]bool
	methods     map[string]bool
	allowMethod string
	headers     map[string]bool // lower case
	allowHeader string
	expose      string
	credentials bool
	maxAge      string
}

func newCORSPolicy(c CORS, r *route) (*corsPolicy, error) {
	p := &corsPolicy{origins: map[string]bool{}, methods: map[string]bool{}, headers: map[string]bool{},
		credentials: c.Credentials}
	if len(c.Origins) == 0 {
		return nil, errors.New("origins: at least one origin is required")
	}
	for _, o := range c.Origins {
		switch {
		case o == "*":
			if c.Credentials {
				return nil, errors.New(`origins: "*" cannot be used with Credentials`)
			}
			p.anyOrigin = true
		case o == "" || strings.ContainsAny(o, " \t\r\n,*") || !strings.Contains(o, "://") || strings.HasSuffix(o, "/"):
			return nil, fmt.Errorf("origins: %q is not an origin (scheme://host[:port])", o)
		default:
			p.origins[o] = true
		}
	}
	methods := c.Methods
	if len(methods) == 0 {
		methods = r.Methods
	}
	if len(methods) == 0 {
		methods = []string{"GET", "HEAD", "POST"}
	}
	for _, m := range methods {
		if !validMethods[m] {
			return nil, fmt.Errorf("methods: %q is not an HTTP method", m)
		}
		p.methods[m] = true
	}
	p.allowMethod = strings.Join(methods, ", ")
	for _, h := range c.Headers {
		if !validHeaderName(h) {
			return nil, fmt.Errorf("headers: %q is not a header name", h)
		}
		p.headers[strings.ToLower(h)] = true
	}
	p.allowHeader = strings.Join(c.Headers, ", ")
	for _, h := range c.Expose {
		if !validHeaderName(h) {
			return nil, fmt.Errorf("expose: %q is not a header name", h)
		}
	}
	p.expose = strings.Join(c.Expose, ", ")
	switch {
	case c.MaxAge < 0:
		return nil, fmt.Errorf("maxage: %v is negative", c.MaxAge)
	case c.MaxAge > 0:
		p.maxAge = strconv.FormatInt(int64(c.MaxAge.Seconds()), 10)
	}
	return p, nil
}

func (p *corsPolicy) allowed(origin string) bool {
	return origin != "" && (p.anyOrigin || p.origins[origin])
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a preflight request: 204 with the policy for an allowed
// origin asking for allowed methods and headers, 403 otherwise. It reports the
// detail of a refusal, or "".
func (p *corsPolicy) preflight(w http.ResponseWriter, r *http.Request) string {
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	if !p.allowed(origin) {
		return "origin " + strconv.Quote(origin) + " is not allowed"
	}
	if m := r.Header.Get("Access-Control-Request-Method"); !p.methods[m] {
		return "method " + strconv.Quote(m) + " is not allowed for cross-origin requests"
	}
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "" && !p.headers[name] {
				return "header " + strconv.Quote(name) + " is not allowed for cross-origin requests"
			}
		}
	}
	p.setOrigin(h, origin)
	h.Set("Access-Control-Allow-Methods", p.allowMethod)
	if p.allowHeader != "" {
		h.Set("Access-Control-Allow-Headers", p.allowHeader)
	}
	if p.maxAge != "" {
		h.Set("Access-Control-Max-Age", p.maxAge)
	}
	w.WriteHeader(http.StatusNoContent)
	return ""
}

// setOrigin sets the headers that admit origin.
func (p *corsPolicy) setOrigin(h http.Header, origin string) {
	if p.anyOrigin && !p.credentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// corsResponseHeaders are the CORS headers the gateway owns on routes with a
// policy: an upstream's are dropped.
var corsResponseHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
	"Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age",
}

// respond sets the CORS headers of an actual (not preflight) answer.
func (p *corsPolicy) respond(h http.Header, origin string) {
	for _, k := range corsResponseHeaders {
		delete(h, k)
	}
	h.Add("Vary", "Origin")
	if !p.allowed(origin) {
		return
	}
	p.setOrigin(h, origin)
	if p.expose != "" {
		h.Set("Access-Control-Expose-Headers", p.expose)
	}
}
