package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/pier-go/pier/discovery"
)

func ExampleNewMemory() {
	ctx := context.Background()
	reg := discovery.NewMemory()
	_ = reg.Register(ctx, discovery.Instance{ID: "users-1", Service: "users", Addr: "10.0.0.5:8080"})
	_ = reg.Register(ctx, discovery.Instance{ID: "users-2", Service: "users", Addr: "10.0.0.6:8080"})

	users, err := reg.Resolve(ctx, "users")
	fmt.Println(len(users), users[0].Addr, err)

	_, err = reg.Resolve(ctx, "orders")
	fmt.Println(errors.Is(err, discovery.ErrNoInstances), err)
	// Output:
	// 2 10.0.0.5:8080 <nil>
	// true discovery: no healthy instances for "orders"
}

func ExampleNewStatic() {
	reg, err := discovery.NewStatic(map[string][]string{
		"users": {"10.0.0.5:8080", "10.0.0.6:8080"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	users, _ := reg.Resolve(context.Background(), "users")
	for _, in := range users {
		fmt.Println(in.ID, in.Addr)
	}
	// Output:
	// users@10.0.0.5:8080 10.0.0.5:8080
	// users@10.0.0.6:8080 10.0.0.6:8080
}

// The same registry from text, as StaticFromEnv reads it from PIER_SERVICES.
func ExampleParseStatic() {
	reg, err := discovery.ParseStatic("users=10.0.0.5:8080,10.0.0.6:8080; orders=orders.internal:9000")
	if err != nil {
		fmt.Println(err)
		return
	}
	orders, _ := reg.Resolve(context.Background(), "orders")
	fmt.Println(orders[0].Addr)

	_, err = discovery.ParseStatic("users=10.0.0.5")
	fmt.Println(err)
	// Output:
	// orders.internal:9000
	// discovery: static: instance "users@10.0.0.5": address 10.0.0.5: missing port in address
}

func ExampleInstance_Validate() {
	in := discovery.Instance{ID: "u1", Service: "Users", Addr: "10.0.0.5:8080"}
	fmt.Println(in.Validate())
	// Output:
	// instance "u1": invalid service name "Users": want 1 to 63 lowercase letters, digits and inner hyphens
}

// A client calls services by name: the host of the URL is the service, and the
// registry says where its instances are.
func ExampleNewClient() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s for host %s\n", r.Method, r.URL.Path, r.Host)
	}))
	defer srv.Close()

	reg := discovery.NewMemory()
	_ = reg.Register(context.Background(), discovery.Instance{
		ID: "users-1", Service: "users", Addr: strings.TrimPrefix(srv.URL, "http://"),
	})

	client := discovery.NewClient(reg) // P2C, 2 retries within a 20% budget, breaker, ejection
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://users/users/42")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.Status, ": ", string(body))
	// Output:
	// 200 OK: GET /users/42 for host users
}

// StaticFromEnv reads PIER_SERVICES, so a deployment can list addresses
// without code: "name=addr,addr;name=addr".
func ExampleStaticFromEnv() {
	os.Setenv(discovery.StaticEnv, "users=10.0.0.5:8080,10.0.0.6:8080; orders=orders.internal:9000")
	defer os.Unsetenv(discovery.StaticEnv)
	reg, err := discovery.StaticFromEnv()
	if err != nil {
		fmt.Println(err)
		return
	}
	users, _ := reg.Resolve(context.Background(), "users")
	orders, _ := reg.Resolve(context.Background(), "orders")
	fmt.Println(len(users), orders[0].Addr)

	os.Setenv(discovery.StaticEnv, "users=10.0.0.5")
	_, err = discovery.StaticFromEnv()
	fmt.Println(err)
	// Output:
	// 2 orders.internal:9000
	// discovery: static: PIER_SERVICES: instance "users@10.0.0.5": address 10.0.0.5: missing port in address
}
