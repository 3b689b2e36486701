package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/gateway"
)

func ExampleNew() {
	// An instance of the users service, registered in a registry.
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "users saw %s %s from %s\n", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	defer users.Close()
	reg := discovery.NewMemory()
	_ = reg.Register(context.Background(), discovery.Instance{ID: "users-1", Service: "users", Addr: users.Listener.Addr().String()})

	// The gateway calls it through the discovery-aware client.
	client := discovery.NewClient(reg)
	defer client.CloseIdleConnections()
	gw, err := gateway.New(client, []gateway.Route{
		{Name: "users", Prefix: "/api/users", Service: "users", Rewrite: "/users", Methods: []string{"GET"},
			Auth: gateway.AuthNone},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	front := httptest.NewServer(gw)
	defer front.Close()

	for _, path := range []string{"/api/users/42", "/api/usersx", "/api/users/%2e%2e/admin"} {
		resp, err := http.Get(front.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Printf("%s: %s", path, body)
		} else {
			fmt.Printf("%s: %d %s\n", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// Output:
	// /api/users/42: users saw GET /users/42 from 127.0.0.1
	// /api/usersx: 404 application/problem+json
	// /api/users/%2e%2e/admin: 400 application/problem+json
}

func ExampleLoadRoutes() {
	routes, err := gateway.LoadRoutes("routes.yaml", []byte(`
routes:
  - name: users
    prefix: /api/users
    service: users
    rewrite: /users
    scopes: [users:read]
    rate_limit: {rate: 100, burst: 200}
    timeout: 5s
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	r := routes[0]
	fmt.Println(r.Name, r.Prefix, "->", r.Service+r.Rewrite, r.Scopes, r.RateLimit.Rate, r.Timeout)

	_, err = gateway.LoadRoutes("routes.yaml", []byte(`
routes:
  - prefix: /api/users
    service: users
    jwk-url: http://users/.well-known/jwks.json
`))
	fmt.Println(err)
	// Output:
	// users /api/users -> users/users [users:read] 100 5s
	// gateway: routes.yaml: line 5: unknown key "jwk-url"
}
