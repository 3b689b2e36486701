package shop_test

import (
	"context"
	"fmt"
	"os"

	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/service"
)

// A process of its own for the products service: its store from a database
// URL, its Service from options; Run would serve it until the context ends.
func ExampleNewNode() {
	dir, err := os.MkdirTemp("", "shop-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	parts, db, err := shop.OpenParts(ctx, shop.Products, "sqlite:"+dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	node, err := shop.NewNode(shop.Products, parts, service.WithAddr("127.0.0.1:0"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close() // Run closes it too
	fmt.Println(node.Service.Name(), "is built; its readiness checks its database:", parts.DB.Check(ctx) == nil)

	_, err = shop.NewNode("inventory", shop.Parts{})
	fmt.Println(err)
	// Output:
	// products is built; its readiness checks its database: true
	// shop: no service "inventory"
}
