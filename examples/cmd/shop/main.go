// Command shop runs the whole shop in one process: the users, products,
// payments and orders services on loopback ports, found through an in-memory
// registry, behind the gateway.
//
//	go run ./examples/cmd/shop
//
// Flags:
//
//	-addr            the gateway's address (default :8080)
//	-data            the data directory (default <user cache dir>/pier-shop)
//	-admin-password  the password of admin@example.com when it is first
//	                 seeded (default: generated and printed)
//	-payments-delay  how long each charge takes (default 0)
//	-payments-fail   the share of charges that fail with 503 (default 0)
//
// The demo data (Alice, Bob, the admin and a few products) is seeded once per
// data directory. Ctrl-C stops everything gracefully; a second one at once.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/examples/shop/payments"
	"github.com/pier-go/pier/service"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is what the command prints for err: prefixed with "shop: ",
// once, whether or not the shop package already said it.
func errorLine(err error) string {
	if msg := err.Error(); strings.HasPrefix(msg, "shop: ") {
		return msg
	}
	return "shop: " + err.Error()
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("shop", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "the gateway's address")
	data := fs.String("data", "", "the data directory (default <user cache dir>/pier-shop)")
	adminPassword := fs.String("admin-password", "", "the seeded admin's password (default: generated and printed)")
	delay := fs.Duration("payments-delay", 0, "how long each charge takes")
	failRate := fs.Float64("payments-fail", 0, "the share of charges that fail with 503, 0 to 1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no -data and no user cache directory: %w", err)
		}
		*data = filepath.Join(dir, "pier-shop")
	}
	generated := *adminPassword == ""
	if generated {
		var b [12]byte
		_, _ = rand.Read(b[:])
		*adminPassword = base64.RawURLEncoding.EncodeToString(b[:])
	}
	logger, err := service.NewLogger()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second Ctrl-C ends the process at once

	fmt.Fprintf(out, "data directory: %s\n", *data)
	s, err := shop.Open(ctx, shop.Config{
		Addr:     *addr,
		DataDir:  *data,
		Logger:   logger,
		Payments: []payments.Option{payments.WithDelay(*delay), payments.WithFailureRate(*failRate)},
	})
	if err != nil {
		return err
	}
	seeded, err := s.Seed(ctx, *adminPassword)
	if err != nil {
		return joinClose(err, s)
	}
	switch {
	case seeded && generated:
		fmt.Fprintf(out, "seeded the demo data; admin: %s / %s (generated; set it with -admin-password on a new -data)\n", shop.AdminEmail, *adminPassword)
	case seeded:
		fmt.Fprintf(out, "seeded the demo data; admin: %s with the -admin-password given\n", shop.AdminEmail)
	default:
		fmt.Fprintf(out, "demo data found; the admin's password is the one it was seeded with\n")
	}
	err = s.Run(ctx, func(gw net.Addr) { printHelp(out, gw) })
	return joinClose(err, s)
}

func joinClose(err error, s *shop.Shop) error {
	if cerr := s.Close(); cerr != nil && err == nil {
		return cerr
	}
	return err
}

func printHelp(out io.Writer, gw net.Addr) {
	base := "http://" + gw.String()
	if tcp, ok := gw.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		base = fmt.Sprintf("http://localhost:%d", tcp.Port)
	}
	fmt.Fprintf(out, `
the shop is up at %[1]s  (started %[2]s)

  health      %[1]s/health
  products    %[1]s/api/products

try:
  curl -s %[1]s/api/products
  TOKEN=$(curl -s %[1]s/api/login -H 'Content-Type: application/json' -d '{"email":"%[3]s","password":"%[4]s"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -s %[1]s/api/users/me -H "Authorization: Bearer $TOKEN"
  PRODUCT=$(curl -s '%[1]s/api/products?limit=1' | sed 's/.*"id":"\([^"]*\)".*/\1/')
  curl -s %[1]s/api/orders -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -H 'Idempotency-Key: first-order' \
    -d '{"items":[{"product_id":"'$PRODUCT'","quantity":1}],"card_number":"4242424242424242"}'
  curl -s %[1]s/api/orders -H "Authorization: Bearer $TOKEN"

card 4242424242424242 captures, 4000000000000002 is declined. Ctrl-C stops the shop.
`, base, time.Now().Format(time.TimeOnly), shop.AliceEmail, shop.AlicePassword)
}
