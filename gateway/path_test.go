package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pier-go/pier/gateway"
)

// pathRoutes has an open route and a route a client must not reach by path
// tricks; each goes to its own service, so the upstream that answers names the
// route that matched.
func pathRoutes() []gateway.Route {
	return []gateway.Route{
		open("public", "/api/public", "public"),
		open("admin", "/api/admin", "admin"),
		{Name: "files", Prefix: "/files", Service: "files", StripPrefix: true, Auth: gateway.AuthNone},
		{Name: "v1", Prefix: "/v1/users", Service: "users", Rewrite: "/users", Auth: gateway.AuthNone},
	}
}

// pathCase is one request-target and where it must end: at 400 (or 404), or
// at service with the upstream seeing exactly path.
type pathCase struct {
	name    string
	target  string
	status  int    // the gateway's answer when it refuses; 0 when it routes
	service string // the upstream that must get it
	path    string // the path that upstream must see
	// byServer: net/http refuses the request line before the gateway sees
	// it, with its own plain 400.
	byServer bool
}

// pathTable is every path confusion the gateway must not fall for. Each
// name says the attack and, where there is one, the CVE it comes from.
var pathTable = []pathCase{
	{name: "plain", target: "/api/public/x", service: "public", path: "/api/public/x"},
	{name: "prefix itself", target: "/api/admin", service: "admin", path: "/api/admin"},
	{name: "trailing slash kept", target: "/api/admin/", service: "admin", path: "/api/admin/"},
	{name: "segment boundary /api/adminx", target: "/api/adminx", status: 404},
	{name: "segment boundary /api/admin-x", target: "/api/admin-x/y", status: 404},
	{name: "case is significant", target: "/API/admin", status: 404},
	{name: "decoded unreserved names its route", target: "/api/%61dmin/x", service: "admin", path: "/api/admin/x"},
	{name: "dot-dot CVE-2019-9901", target: "/api/public/../admin/x", status: 400},
	{name: "dot segment", target: "/api/public/./x", status: 400},
	{name: "encoded dot-dot CVE-2025-32431", target: "/api/public/%2e%2e/admin/x", status: 400},
	{name: "encoded dot-dot upper CVE-2025-47952", target: "/api/public/%2E%2E/admin", status: 400},
	{name: "half-encoded dot-dot", target: "/api/public/.%2e/admin", status: 400},
	{name: "encoded dot in name", target: "/api/public/a%2ejson", status: 400},
	{name: "encoded slash CVE-2021-29492", target: "/api/public%2fadmin", status: 400},
	{name: "encoded slash dot-dot CVE-2021-29492", target: "/api/public/..%2fadmin", status: 400},
	{name: "encoded backslash CVE-2021-29492", target: "/api/public/%5c..%5cadmin", status: 400},
	{name: "raw backslash", target: `/api/public\..\admin`, status: 400},
	{name: "semicolon path parameter CVE-2025-66490", target: "/api/public;/../admin", status: 400},
	{name: "semicolon after prefix CVE-2025-66490", target: "/api/admin;x=1", status: 400},
	{name: "encoded semicolon", target: "/api/public/%3b/admin", status: 400},
	{name: "double slash", target: "/api/public//admin", status: 400},
	{name: "leading double slash", target: "//api/admin", status: 400},
	{name: "encoded NUL", target: "/api/public/%00/admin", status: 400},
	{name: "encoded hash CVE-2021-32779", target: "/api/public/%23/../admin", status: 400},
	{name: "raw fragment CVE-2021-32779", target: "/api/public#/../admin", status: 400},
	{name: "encoded question mark", target: "/api/public/x%3f/admin", status: 400},
	{name: "double-encoded slash", target: "/api/public/%252f", status: 400},
	{name: "double-encoded dot-dot", target: "/api/public/%252e%252e/admin", status: 400},
	{name: "malformed escape", target: "/api/public/%zz", status: 400, byServer: true},
	{name: "truncated escape", target: "/api/public/%2", status: 400, byServer: true},
	{name: "absolute-form target", target: "http://evil.example/api/admin", status: 400},
	{name: "query names another route CVE-2025-54576", target: "/api/public/x?next=/api/admin", service: "public", path: "/api/public/x"},
	{name: "query looks like path", target: "/api/admin?/api/public", service: "admin", path: "/api/admin"},
	{name: "strip then nothing", target: "/files", service: "files", path: "/"},
	{name: "strip keeps rest", target: "/files/a/b", service: "files", path: "/a/b"},
	{name: "strip with encoded space", target: "/files/a%20b", service: "files", path: "/a b"},
	{name: "strip cannot expose dot-dot", target: "/files/..", status: 400},
	{name: "rewrite", target: "/v1/users/42", service: "users", path: "/users/42"},
	{name: "rewrite boundary", target: "/v1/usersx", status: 404},
}

func TestPathConfusion(t *testing.T) {
	e := newEnv(t, pathRoutes())
	for _, c := range pathTable {
		t.Run(c.name, func(t *testing.T) {
			before := map[string]int{}
			for s, u := range e.up {
				before[s] = len(u.requests())
			}
			resp, body := e.raw(t, "GET", c.target)
			if c.status != 0 {
				if c.byServer {
					if resp.StatusCode != c.status {
						t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
					}
				} else {
					wantProblem(t, resp, body, c.status)
				}
				for s, u := range e.up {
					if n := len(u.requests()); n != before[s] {
						t.Fatalf("refused request reached upstream %s", s)
					}
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			for s, u := range e.up {
				n := len(u.requests())
				if s == c.service && n != before[s]+1 || s != c.service && n != before[s] {
					t.Fatalf("upstream %s got %d requests, had %d; want only %s to get one", s, n, before[s], c.service)
				}
			}
			got := e.up[c.service].last(t)
			if got.Path != c.path {
				t.Errorf("upstream path %q, want %q", got.Path, c.path)
			}
			uriPath, _, _ := strings.Cut(got.RequestURI, "?")
			if uriPath != got.Escaped {
				t.Errorf("upstream request line %q disagrees with its escaped path %q", got.RequestURI, got.Escaped)
			}
			if _, q, ok := strings.Cut(c.target, "?"); ok && got.Query != q {
				t.Errorf("upstream query %q, want %q", got.Query, q)
			}
		})
	}
}

// TestAsteriskFormRefused: OPTIONS * is not proxied. net/http answers it
// before any handler, so the gateway is called in process.
func TestAsteriskFormRefused(t *testing.T) {
	e := newEnv(t, pathRoutes())
	r := httptest.NewRequest("OPTIONS", "/api/public", nil)
	r.RequestURI = "*"
	w := httptest.NewRecorder()
	e.gw.ServeHTTP(w, r)
	wantProblem(t, w.Result(), w.Body.String(), http.StatusBadRequest)
}
