package consul_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/consul"
)

// A Registry on the local Consul agent. api.DefaultConfig reads
// CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN and the other CONSUL_* variables; the
// Registry itself reads nothing. New makes no call, so this runs without an
// agent; so does Register here, which rejects an instance without a port
// before it calls the agent.
func ExampleNew() {
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	reg, err := consul.New(client,
		consul.WithCheckInterval(2*time.Second),
		consul.WithLogger(slog.Default()), // re-registrations and watch failures
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Close()

	// A service registers its advertised address once it serves, and
	// deregisters before it stops.
	err = reg.Register(context.Background(), discovery.Instance{
		ID:      "users-1",
		Service: "users",
		Addr:    "10.0.0.7", // no port
	})
	fmt.Println(err)
	// Output:
	// consul: register: instance "users-1": address 10.0.0.7: missing port in address
}
