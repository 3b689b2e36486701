package gateway

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pier-go/pier/auth"
	"github.com/pier-go/pier/discovery"
)

// AuthMode says what a route asks of a request's bearer token.
type AuthMode string

const (
	// AuthToken requires a valid bearer token, verified by the [WithVerifier]
	// verifier; with [Route.Scopes] the token must also hold the scopes. It is
	// what the zero value means.
	AuthToken AuthMode = "token"
	// AuthNone lets requests through without a token. A token a request carries
	// is still passed on to the upstream, unverified.
	AuthNone AuthMode = "none"
)

// RateKey says what a route's rate limit counts requests by.
type RateKey string

const (
	// RateKeySubject counts by the token's subject on authenticated requests and
	// by client IP address otherwise. It is what the zero value means.
	RateKeySubject RateKey = "subject"
	// RateKeyIP counts by client IP address: the whole address for IPv4, the /64
	// prefix for IPv6, since one host commonly holds a /64.
	RateKeyIP RateKey = "ip"
	// RateKeyHeader counts by the value of [RateLimit.Header], such as an API
	// key, and by client IP address when a request lacks it.
	RateKeyHeader RateKey = "header"
)

// Route sends the requests whose canonical path is Prefix, or lies below it on
// a segment boundary, to an instance of Service. The zero values of its
// optional fields are the defaults stated on each.
type Route struct {
	// Name identifies the route in metrics, logs and rate limit headers. It
	// must be unique in a table; empty means the prefix.
	Name string
	// Prefix is the path the route serves, matched on segment boundaries:
	// "/api/admin" matches /api/admin and /api/admin/x, never /api/adminx. It
	// must be a canonical path without a trailing slash ("/" matches every
	// path). The longest matching prefix wins.
	Prefix string
	// Service is the service the requests go to, as http://<Service>/<path>
	// through the gateway's client. Required.
	Service string
	// StripPrefix removes Prefix from the path sent upstream: /api/users/42
	// under /api/users goes up as /42. The default keeps the path.
	StripPrefix bool
	// Rewrite replaces Prefix with this path on the way upstream: under
	// /api/users with Rewrite "/users", /api/users/42 goes up as /users/42. It
	// must be a canonical path, and excludes StripPrefix. Empty means no
	// rewrite.
	Rewrite string
	// Methods are the methods the route accepts; others are answered 405 with
	// an Allow header. GET implies HEAD. Empty means every method.
	Methods []string
	// Auth is what the route asks of a request's token: [AuthToken] (the
	// default) or [AuthNone].
	Auth AuthMode
	// Scopes, when not empty, must be held by the token: any one of them, or
	// all of them with AllScopes. Requires Auth to be AuthToken.
	Scopes []string
	// AllScopes requires every scope in Scopes rather than any one.
	AllScopes bool
	// RateLimit limits requests per key; nil means no limit.
	RateLimit *RateLimit
	// Timeout bounds the wait for the upstream's response headers, retries
	// included; on expiry the upstream request is cancelled and the client
	// gets 504. The body then streams without a bound, so that event streams
	// and WebSockets work. Zero means [DefaultTimeout].
	Timeout time.Duration
	// BodyLimit bounds the request body in bytes; past it the client gets 413.
	// Zero means [DefaultBodyLimit].
	BodyLimit int64
	// CORS answers preflight requests at the gateway and adds CORS headers to
	// answers for allowed origins; nil means no CORS handling (preflights go
	// through as OPTIONS requests).
	CORS *CORS
	// WebSocket lets WebSocket handshakes through, after auth; the client's
	// connection is upgraded only when the upstream answers 101. The default
	// refuses them with 400.
	WebSocket bool
}

// RateLimit is a token bucket per key: Rate requests a second on average and
// bursts of up to Burst.
type RateLimit struct {
	// Rate is the sustained rate, in requests per second. It must be positive.
	Rate float64
	// Burst is the bucket's size: how many requests may come at once after a
	// quiet spell. Zero means Rate rounded up, at least 1.
	Burst int
	// Key is what requests are counted by: [RateKeySubject] (the default),
	// [RateKeyIP] or [RateKeyHeader].
	Key RateKey
	// Header is the header whose value is the key with RateKeyHeader, such as
	// "X-API-Key"; required then, and only then.
	Header string
}

// CORS is a route's cross-origin policy (the Fetch standard's CORS protocol).
type CORS struct {
	// Origins are the allowed origins, exactly as browsers send them
	// ("https://shop.example"); "*" allows any origin, but not with
	// Credentials. Required.
	Origins []string
	// Methods are the methods a preflight may ask for. Empty means the
	// route's Methods, or GET, HEAD and POST when the route allows any.
	Methods []string
	// Headers are the request headers a preflight may ask for, matched
	// without regard to case. Empty allows only CORS-safelisted headers.
	Headers []string
	// Expose are response headers the browser may show to the page.
	Expose []string
	// Credentials lets the browser send cookies and read the answer
	// (Access-Control-Allow-Credentials: true).
	Credentials bool
	// MaxAge is how long a browser may cache a preflight's answer. Zero means
	// the browser's default (5 s).
	MaxAge time.Duration
}

// Defaults of [Route].
const (
	// DefaultTimeout is a route's wait for the upstream's response headers.
	DefaultTimeout = 30 * time.Second
	// DefaultBodyLimit is a route's request body limit, 10 MiB.
	DefaultBodyLimit = 10 << 20
)

// route is a validated Route, with everything computed that per-request work
// can use.
type route struct {
	Route
	methods   map[string]bool // nil: any
	allow     string          // the Allow header of a 405
	authRule  any             // the auth hook's compiled scope rule
	limiter   *limiterStore   // nil: no limit
	policy    []string        // the RateLimit-Policy header, shared by every response: never written to
	rateName  string          // the start of the RateLimit header's value: the route's name, quoted, and ";r="
	cors      *corsPolicy
	tel       routeTelemetry
	timeout   time.Duration
	bodyLimit int64
}

// table is an immutable route table.
type table struct {
	byPrefix map[string]*route
	routes   []*route // in the order given
	services []string // distinct services, sorted
}

// match returns the route whose prefix is the longest segment-boundary prefix
// of the canonical path p, or nil.
func (t *table) match(p string) *route {
	cand := p
	for {
		if r := t.byPrefix[cand]; r != nil {
			return r
		}
		i := strings.LastIndexByte(cand, '/')
		if i < 0 {
			return nil
		}
		if i == 0 {
			if cand == "/" {
				return nil
			}
			cand = "/"
			continue
		}
		cand = cand[:i]
	}
}

// RouteError is the error of a route that fails validation.
type RouteError struct {
	// Route is the route's name or, when it has none, its prefix.
	Route string
	// Field is the Route field at fault, such as "Prefix".
	Field string
	// File is the name of the file [LoadRoutes] read, or "".
	File string
	// Line is the route's line in that file, or 0.
	Line int
	// Err says what is wrong.
	Err error
}

// Error names the route, the field and, when known, the line.
func (e *RouteError) Error() string {
	at := ""
	if e.File != "" {
		at = e.File + ": "
	}
	if e.Line > 0 {
		at += "line " + strconv.Itoa(e.Line) + ": "
	}
	return fmt.Sprintf("gateway: %sroute %q: %s: %v", at, e.Route, e.Field, e.Err)
}

// Unwrap returns the underlying error.
func (e *RouteError) Unwrap() error { return e.Err }

// ErrConflict is wrapped by the error of a table in which two routes share a
// name or a prefix.
var ErrConflict = errors.New("conflicting routes")

var validMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true,
	"OPTIONS": true, "TRACE": true, "CONNECT": true,
}

// validateRoute checks one route and returns it compiled, without the parts
// that depend on the gateway (limiter, auth rule, telemetry).
func validateRoute(in Route) (*route, error) {
	name := in.Name
	if name == "" {
		name = in.Prefix
	}
	fail := func(field string, format string, args ...any) error {
		return &RouteError{Route: name, Field: field, Err: fmt.Errorf(format, args...)}
	}
	r := &route{Route: in}
	r.Name = name
	r.Methods = slices.Clone(in.Methods)
	r.Scopes = slices.Clone(in.Scopes)
	if in.Prefix == "" {
		return nil, fail("Prefix", "required")
	}
	if c, err := canonicalPath(escapePath(in.Prefix)); err != nil || c != in.Prefix {
		if err == nil {
			err = errors.New("not in canonical form")
		}
		return nil, fail("Prefix", "%q: %v", in.Prefix, err)
	}
	if in.Prefix != "/" && strings.HasSuffix(in.Prefix, "/") {
		return nil, fail("Prefix", "%q: no trailing slash (prefixes match on segment boundaries)", in.Prefix)
	}
	if err := discovery.ValidateServiceName(in.Service); err != nil {
		return nil, fail("Service", "%v", err)
	}
	if in.Rewrite != "" {
		if in.StripPrefix {
			return nil, fail("Rewrite", "excludes StripPrefix")
		}
		if c, err := canonicalPath(escapePath(in.Rewrite)); err != nil || c != in.Rewrite {
			if err == nil {
				err = errors.New("not in canonical form")
			}
			return nil, fail("Rewrite", "%q: %v", in.Rewrite, err)
		}
	}
	if len(in.Methods) > 0 {
		r.methods = make(map[string]bool, len(in.Methods)+1)
		for _, m := range in.Methods {
			if !validMethods[m] {
				return nil, fail("Methods", "%q is not an HTTP method (write it in upper case)", m)
			}
			r.methods[m] = true
		}
		if r.methods["GET"] {
			r.methods["HEAD"] = true
		}
		names := make([]string, 0, len(r.methods))
		for m := range r.methods {
			names = append(names, m)
		}
		slices.Sort(names)
		r.allow = strings.Join(names, ", ")
	}
	switch in.Auth {
	case "":
		r.Auth = AuthToken
	case AuthToken, AuthNone:
	default:
		return nil, fail("Auth", "%q: want %q or %q", in.Auth, AuthToken, AuthNone)
	}
	if len(in.Scopes) > 0 && r.Auth == AuthNone {
		return nil, fail("Scopes", "need Auth %q", AuthToken)
	}
	if in.AllScopes && len(in.Scopes) == 0 {
		return nil, fail("AllScopes", "needs Scopes")
	}
	if len(in.Scopes) > 0 {
		// The auth package's own rule decides what a scope is, so that a
		// route it would refuse on every request fails here instead.
		if err := auth.AnyScope(in.Scopes...).Err(); err != nil {
			return nil, fail("Scopes", "%v", err)
		}
	}
	if rl := in.RateLimit; rl != nil {
		cp := *rl
		r.RateLimit = &cp
		switch {
		case !(rl.Rate > 0) || math.IsInf(rl.Rate, 0):
			return nil, fail("RateLimit.Rate", "%v: want a positive number of requests per second", rl.Rate)
		case rl.Burst < 0:
			return nil, fail("RateLimit.Burst", "%d is negative", rl.Burst)
		}
		if cp.Burst == 0 {
			cp.Burst = max(1, int(math.Ceil(rl.Rate)))
		}
		switch rl.Key {
		case "":
			cp.Key = RateKeySubject
		case RateKeySubject, RateKeyIP:
		case RateKeyHeader:
			if rl.Header == "" || !validHeaderName(rl.Header) {
				return nil, fail("RateLimit.Header", "%q: want a header name with Key %q", rl.Header, RateKeyHeader)
			}
		default:
			return nil, fail("RateLimit.Key", "%q: want %q, %q or %q", rl.Key, RateKeySubject, RateKeyIP, RateKeyHeader)
		}
		if rl.Header != "" && rl.Key != RateKeyHeader {
			return nil, fail("RateLimit.Header", "only with Key %q", RateKeyHeader)
		}
		if isIdentityHeader(rl.Header) {
			return nil, fail("RateLimit.Header", "%q is dropped by the gateway and cannot be a key", rl.Header)
		}
	}
	switch {
	case in.Timeout < 0:
		return nil, fail("Timeout", "%v is negative", in.Timeout)
	case in.Timeout == 0:
		r.timeout = DefaultTimeout
	default:
		r.timeout = in.Timeout
	}
	switch {
	case in.BodyLimit < 0:
		return nil, fail("BodyLimit", "%d is negative", in.BodyLimit)
	case in.BodyLimit == 0:
		r.bodyLimit = DefaultBodyLimit
	default:
		r.bodyLimit = in.BodyLimit
	}
	if in.CORS != nil {
		c, err := newCORSPolicy(*in.CORS, r)
		if err != nil {
			return nil, fail("CORS", "%v", err)
		}
		r.cors = c
		cp := *in.CORS
		r.CORS = &cp
	}
	return r, nil
}

// buildTable validates routes and returns their table, or every error found,
// joined.
func buildTable(routes []Route, file string, lines []int) (*table, error) {
	t := &table{byPrefix: make(map[string]*route, len(routes))}
	names := make(map[string]int, len(routes))
	var errs []error
	lineOf := func(i int) int {
		if i < len(lines) {
			return lines[i]
		}
		return 0
	}
	services := map[string]bool{}
	for i, in := range routes {
		r, err := validateRoute(in)
		if err != nil {
			var re *RouteError
			if errors.As(err, &re) {
				re.File, re.Line = file, lineOf(i)
			}
			errs = append(errs, err)
			continue
		}
		if j, dup := names[r.Name]; dup {
			errs = append(errs, &RouteError{Route: r.Name, Field: "Name", File: file, Line: lineOf(i),
				Err: fmt.Errorf("%w: name used by route %d%s too", ErrConflict, j+1, lineNote(lineOf(j)))})
			continue
		}
		if other := t.byPrefix[r.Prefix]; other != nil {
			j := names[other.Name]
			errs = append(errs, &RouteError{Route: r.Name, Field: "Prefix", File: file, Line: lineOf(i),
				Err: fmt.Errorf("%w: prefix %q is route %q's%s too", ErrConflict, r.Prefix, other.Name, lineNote(lineOf(j)))})
			continue
		}
		names[r.Name] = i
		t.byPrefix[r.Prefix] = r
		t.routes = append(t.routes, r)
		if !services[r.Service] {
			services[r.Service] = true
			t.services = append(t.services, r.Service)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(routes) == 0 {
		if file != "" {
			return nil, fmt.Errorf("gateway: %s: no routes", file)
		}
		return nil, errors.New("gateway: no routes")
	}
	slices.Sort(t.services)
	return t, nil
}

func lineNote(line int) string {
	if line == 0 {
		return ""
	}
	return " (line " + strconv.Itoa(line) + ")"
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
