// Command products runs the products service: the catalogue and its stock
// reservations, as a process of its own. The shop's other services find it,
// and it finds them, through the registry it is given.
//
//	go run ./examples/cmd/products -addr :8081 -data /tmp/shop -registry static -services 'users=127.0.0.1:8081;...'
//
// The flags every service command shares (listen and advertised address,
// registry, database, data directory, log format, drain) are listed by -h
// and in docs/deploy.md; each has an environment variable, and a flag
// wins over its variable. Its own:
//
//	-seed            PIER_SEED            seed the demo catalogue when it is empty
//
// Bad configuration is one line on stderr and exit code 2 (flags) or 1.
// SIGINT or SIGTERM stops it gracefully; see docs/deploy.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/examples/shop/process"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := process.Main(ctx, shop.Products, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
