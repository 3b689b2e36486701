// Command loadgen drives the shop through its gateway for a while at a given
// rate, with customers registering, logging in, browsing, ordering (some with
// a declined card, some short of stock, some retried with the same
// Idempotency-Key, at once and after the first answer) and cancelling; then
// it checks the books and exits non-zero on any violation or on more
// unexpected failures than -max-failures.
//
//	go run ./examples/cmd/loadgen -admin-password PASSWORD -payments http://127.0.0.1:PORT
//
// Flags:
//
//	-target          the gateway's URL (default http://127.0.0.1:8080)
//	-payments        the payments service's own URL, for the payments check
//	                 (default none: that check is skipped, and the summary says so)
//	-admin-email     the admin that creates the run's products (default admin@example.com)
//	-admin-password  the admin's password (required)
//	-duration        how long load is sent (default 10s)
//	-rate            requests per second (default 50)
//	-concurrency     requests in flight at most (default 16)
//	-seed            seeds the mix of actions (default 1)
//	-products        products the run creates (default 4)
//	-stock           each product's initial stock, at most 999 (default 300)
//	-users           customers registered at first (default 12)
//	-timeout         bound on each request (default 15s)
//	-settle          bound on the wait for pending orders at the end (default 10s)
//	-progress        period of the progress line on stderr, 0 for none (default 1s)
//	-max-failures    unexpected failures allowed before the exit code is 1 (default 0)
//
// Targets must be loopback addresses. The progress lines go to stderr, the
// summary and each violation (one a line) to stdout. Exit codes: 0 the books
// balance, 1 a violation or too many failures, 2 bad flags or a run that
// could not be made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pier-go/pier/examples/shop/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	fs.StringVar(&cfg.Target, "target", "http://127.0.0.1:8080", "the gateway's URL (a loopback address)")
	fs.StringVar(&cfg.Payments, "payments", "", "the payments service's own URL, for the payments check (default: skipped)")
	fs.StringVar(&cfg.AdminEmail, "admin-email", "admin@example.com", "the admin that creates the run's products")
	fs.StringVar(&cfg.AdminPassword, "admin-password", "", "the admin's password (required)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long load is sent")
	fs.Float64Var(&cfg.Rate, "rate", 50, "requests per second")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "requests in flight at most")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seeds the mix of actions")
	fs.IntVar(&cfg.Products, "products", 4, "products the run creates")
	fs.Int64Var(&cfg.Stock, "stock", 300, fmt.Sprintf("each product's initial stock, at most %d", loadgen.MaxStock))
	fs.IntVar(&cfg.Users, "users", 12, "customers registered at first")
	fs.DurationVar(&cfg.Timeout, "timeout", 15*time.Second, "bound on each request")
	fs.DurationVar(&cfg.Settle, "settle", 10*time.Second, "bound on the wait for pending orders at the end")
	progress := fs.Duration("progress", time.Second, "period of the progress line on stderr, 0 for none")
	maxFailures := fs.Int64("max-failures", 0, "unexpected failures allowed before the exit code is 1")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	// Zero means "the default" to the package: reject it here, where the
	// flag's default is already in place.
	switch {
	case cfg.Duration <= 0 || cfg.Rate <= 0 || cfg.Concurrency <= 0 || cfg.Products <= 0 || cfg.Users <= 0 ||
		cfg.Stock <= 0 || cfg.Timeout <= 0 || cfg.Settle <= 0:
		fmt.Fprintln(stderr, "loadgen: -duration, -rate, -concurrency, -products, -stock, -users, -timeout and -settle must be positive")
		return 2
	case *progress < 0 || *maxFailures < 0:
		fmt.Fprintln(stderr, "loadgen: -progress and -max-failures must not be negative")
		return 2
	}
	if *progress > 0 {
		cfg.Progress, cfg.ProgressEvery = stderr, *progress
	}
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	fmt.Fprint(stdout, rep)
	if !rep.OK(*maxFailures) {
		if n := rep.UnexpectedFailures(); n > *maxFailures {
			fmt.Fprintf(stdout, "FAILED: %d unexpected failures, more than -max-failures %d\n", n, *maxFailures)
		}
		if n := len(rep.Violations); n > 0 {
			fmt.Fprintf(stdout, "FAILED: %d violations of the books\n", n)
		}
		return 1
	}
	return 0
}
