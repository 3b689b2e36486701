package gateway_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pier-go/pier/gateway"
)

const routesYAML = `routes:
  - name: users
    prefix: /api/users
    service: users
    rewrite: /users
    methods: [GET, POST]
    auth: none
    rate_limit: {rate: 50, burst: 100, key: ip}
    timeout: 2s
    body_limit: 65536
    cors:
      origins: [https://shop.example]
      headers: [Authorization]
      max_age: 10m
  - name: files
    prefix: /files
    service: files
    strip_prefix: true
    auth: none
    websocket: true
`

func TestLoadRoutesYAMLAndJSON(t *testing.T) {
	want := []gateway.Route{
		{Name: "users", Prefix: "/api/users", Service: "users", Rewrite: "/users", Methods: []string{"GET", "POST"},
			Auth: gateway.AuthNone, RateLimit: &gateway.RateLimit{Rate: 50, Burst: 100, Key: gateway.RateKeyIP},
			Timeout: 2 * time.Second, BodyLimit: 65536,
			CORS: &gateway.CORS{Origins: []string{"https://shop.example"}, Headers: []string{"Authorization"}, MaxAge: 10 * time.Minute}},
		{Name: "files", Prefix: "/files", Service: "files", StripPrefix: true, Auth: gateway.AuthNone, WebSocket: true},
	}
	got, err := gateway.LoadRoutes("routes.yaml", []byte(routesYAML))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("YAML (-want +got):\n%s", d)
	}
	const js = `{"routes": [
  {"name": "users", "prefix": "/api/users", "service": "users", "rewrite": "/users", "methods": ["GET", "POST"],
   "auth": "none", "rate_limit": {"rate": 50, "burst": 100, "key": "ip"}, "timeout": "2s", "body_limit": 65536,
   "cors": {"origins": ["https://shop.example"], "headers": ["Authorization"], "max_age": "10m"}},
  {"name": "files", "prefix": "/files", "service": "files", "strip_prefix": true, "auth": "none", "websocket": true}
]}`
	for _, name := range []string{"routes.json", "routes"} {
		got, err = gateway.LoadRoutes(name, []byte(js))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("%s (-want +got):\n%s", name, d)
		}
	}
}

// TestLoadRoutesRefuses: a typo must fail loudly, naming the key and its
// line, never load a route that silently lacks what its author wrote.
func TestLoadRoutesRefuses(t *testing.T) {
	cases := []struct {
		name, file, data string
		want             []string
	}{
		{"unknown key jwk-url", "routes.yaml", "routes:\n  - prefix: /a\n    service: a\n    auth: none\njwk-url: http://x\n",
			[]string{"line 5", `"jwk-url"`}},
		{"unknown route key strip-prefix", "routes.yaml", "routes:\n  - prefix: /a\n    service: a\n    strip-prefix: true\n",
			[]string{"line 4", `"strip-prefix"`}},
		{"unknown nested key", "routes.yaml", "routes:\n  - prefix: /a\n    service: a\n    rate_limit:\n      rate: 1\n      brust: 5\n",
			[]string{"line 6", `"brust"`}},
		{"unknown key in JSON", "routes.json", "{\"routes\": [\n {\"prefix\": \"/a\",\n  \"service\": \"a\",\n  \"jwk-url\": \"x\"}]}",
			[]string{"line 4", `"jwk-url"`}},
		{"key twice in YAML", "routes.yaml", "routes:\n  - prefix: /a\n    service: a\n    service: b\n",
			[]string{"line 4", "service"}},
		{"key twice in JSON", "routes.json", "{\"routes\": [{\"prefix\": \"/a\",\n \"service\": \"a\",\n \"service\": \"b\"}]}",
			[]string{"line 3", "service"}},
		{"duplicate prefix", "routes.yaml", "routes:\n  - {name: a, prefix: /a, service: a, auth: none}\n  - {name: b, prefix: /a, service: b, auth: none}\n",
			[]string{"line 3", "line 2", "conflicting", "/a"}},
		{"duplicate name", "routes.yaml", "routes:\n  - {name: a, prefix: /a, service: a, auth: none}\n  - {name: a, prefix: /b, service: b, auth: none}\n",
			[]string{"line 3", "conflicting"}},
		{"bad duration", "routes.yaml", "routes:\n  - {prefix: /a, service: a, auth: none}\n  - {prefix: /b, service: b, timeout: 5 seconds}\n",
			[]string{"line 3", "timeout"}},
		{"wrong type", "routes.yaml", "routes:\n  - {prefix: /a, service: a, websocket: sometimes}\n",
			[]string{"line 2"}},
		{"invalid route", "routes.yaml", "routes:\n  - {prefix: /a, service: a, auth: none}\n  - {prefix: /b/, service: b, auth: none}\n",
			[]string{"line 3", "Prefix"}},
		{"JSON syntax", "routes.json", "{\"routes\": [\n{\"prefix\": \"/a\",,}]}", []string{"line 2"}},
		{"JSON trailing data", "routes.json", "{\"routes\": [{\"prefix\": \"/a\", \"service\": \"a\", \"auth\": \"none\"}]}\n{}", []string{"after"}},
		{"empty", "routes.yaml", "", []string{"no routes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			routes, err := gateway.LoadRoutes(c.file, []byte(c.data))
			if err == nil {
				t.Fatalf("LoadRoutes = %v, want an error", routes)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "gateway: "+c.file) {
				t.Errorf("error %q does not start with gateway: %s", err, c.file)
			}
		})
	}
}

func TestLoadRoutesConflictIsMatchable(t *testing.T) {
	_, err := gateway.LoadRoutes("r.yaml", []byte("routes:\n  - {prefix: /a, service: a, auth: none}\n  - {prefix: /a, service: b, auth: none, name: b}\n"))
	if !errors.Is(err, gateway.ErrConflict) {
		t.Fatalf("err %v, want ErrConflict", err)
	}
	var re *gateway.RouteError
	if !errors.As(err, &re) || re.Line != 3 || re.Field != "Prefix" {
		t.Fatalf("err %#v, want a RouteError on line 3, field Prefix", re)
	}
}
