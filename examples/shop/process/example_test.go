package process_test

import (
	"fmt"

	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/examples/shop/process"
)

// The configuration of an orders process: flags win over the environment,
// and a bad value is one line naming its flag or variable.
func ExampleParse() {
	env := map[string]string{
		"PIER_REGISTRY":      "consul",
		"PIER_ADDR":          ":9000",
		"DATABASE_URL":       "postgres://shop@db:5432/shop",
		"PIER_ORDERS_SECRET": "s3cret",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	cfg, err := process.Parse(shop.Orders, []string{"-addr", ":8084"}, lookup)
	fmt.Println(cfg.Addr, cfg.Registry, cfg.Database, err)

	env["PIER_REGISTRY"] = "zookeeper"
	_, err = process.Parse(shop.Orders, nil, lookup)
	fmt.Println(err)
	// Output:
	// :8084 consul postgres://shop@db:5432/shop <nil>
	// PIER_REGISTRY "zookeeper": unknown registry (want static, consul or dns)
}
