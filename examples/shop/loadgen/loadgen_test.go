package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/examples/shop/payments"
	"github.com/pier-go/pier/examples/shop/products"
	"github.com/pier-go/pier/examples/shop/users"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const adminPassword = "admin-password"

// runningShop is the shop on free loopback ports, run until the test ends.
type runningShop struct {
	gateway, payments string
	dir               string
}

func startShop(t *testing.T) *runningShop {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := shop.Open(ctx, shop.Config{
		Addr:    "127.0.0.1:0",
		DataDir: dir,
		Logger:  slog.New(slog.DiscardHandler),
		// argon2id's shape with little memory: many log-ins under -race.
		PasswordParams: users.PasswordParams{Memory: 1024, Time: 1, Threads: 1},
		// The generator logs in many customers from one address.
		LoginRate: 1000, LoginBurst: 1000,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := s.Seed(ctx, adminPassword); err != nil {
		cancel()
		t.Fatal(errors.Join(err, s.Close()))
	}
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(a net.Addr) { ready <- a }) }()
	var gw net.Addr
	select {
	case gw = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("the shop stopped before it was ready: %v", errors.Join(err, s.Close()))
	}
	pay, ok := s.Addr(shop.Payments)
	if !ok {
		t.Fatal("payments is not running")
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("shop run: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("shop close: %v", err)
			}
		})
	})
	return &runningShop{gateway: "http://" + gw.String(), payments: "http://" + pay.String(), dir: dir}
}

func (rs *runningShop) config(progress io.Writer) Config {
	return Config{
		Target:        rs.gateway,
		Payments:      rs.payments,
		AdminEmail:    shop.AdminEmail,
		AdminPassword: adminPassword,
		Duration:      3 * time.Second,
		Rate:          80,
		Concurrency:   16,
		Seed:          42,
		Products:      3,
		// Little stock, so that orders run short and are refused with 409.
		Stock:    40,
		Users:    6,
		Progress: progress,
		// Several progress lines in a short run.
		ProgressEvery: 500 * time.Millisecond,
	}
}

// TestLoadBalancesTheBooks runs the mix against the shop for a few seconds:
// the books balance, nothing failed unexpectedly, and the mix did reach the
// shop's business answers (declines, short stock, cancels, a key reused with
// another body), which the generator's first round of every action makes
// sure of however slow the machine.
func TestLoadBalancesTheBooks(t *testing.T) {
	rs := startShop(t)
	pw := &lockedWriter{w: &bytes.Buffer{}}
	cfg := rs.config(pw)
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", pw.String())
	t.Logf("report:\n%s", rep)
	for _, v := range rep.Violations {
		t.Errorf("violation: %s", v)
	}
	if n := rep.UnexpectedFailures(); n != 0 {
		t.Errorf("%d unexpected failures: %v", n, rep.FailureExamples)
	}
	if !rep.OK(0) || !rep.PaymentsChecked {
		t.Errorf("OK(0) = %v, payments checked %v; want true, true", rep.OK(0), rep.PaymentsChecked)
	}
	for _, k := range []string{"confirmed", "rejected", "short", "cancelled"} {
		if rep.Outcomes[k] == 0 {
			t.Errorf("no %s answer in the run: %v", k, rep.Outcomes)
		}
	}
	if rep.Orders["confirmed"] == 0 || rep.Orders["cancelled"] == 0 || rep.Orders["rejected"] == 0 {
		t.Errorf("orders read back = %v, want confirmed, cancelled and rejected ones", rep.Orders)
	}
	for _, k := range []string{"402", "409", "422"} {
		if rep.Expected[k] == 0 {
			t.Errorf("no expected %s answer: %v", k, rep.Expected)
		}
	}
	if rep.Requests < 30 {
		t.Errorf("%d requests, want at least 30", rep.Requests)
	}
	if lines := strings.Count(pw.String(), "req "); lines < 2 {
		t.Errorf("%d progress lines, want at least 2:\n%s", lines, pw.String())
	}
}

// lockedWriter is an io.Writer safe for the progress loop and the test.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// TestCheckerFindsPlantedViolations runs a short load, then changes the books
// behind the generator's back, straight in the services' stores: the
// checker must find each change.
func TestCheckerFindsPlantedViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, dir string, productID string)
		want  string
	}{
		{"stock taken behind its back", func(t *testing.T, dir, productID string) {
			s, err := products.OpenSQLite(t.Context(), dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, _, err := s.Reserve(t.Context(), products.Reservation{ID: "planted", ProductID: productID, Quantity: 3}); err != nil {
				t.Fatal(err)
			}
		}, "(+3 units unaccounted for)"},
		{"payment captured for no order", func(t *testing.T, dir, _ string) {
			s, err := payments.OpenSQLite(t.Context(), dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, _, err := s.Create(t.Context(), payments.Charge{ID: "ch_planted", Reference: "o_planted", AmountCents: 999,
				CardLast4: "4242", Status: payments.Captured}); err != nil {
				t.Fatal(err)
			}
		}, "payment ch_planted: captured 999 cents for o_planted, which is no order of the run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := startShop(t)
			cfg := rs.config(nil)
			cfg.Duration = 500 * time.Millisecond
			cfg.Stock = 500 // no product runs out: the planted reservation must succeed
			// The planted violation stays: the checker reads again for a
			// second, then reports it.
			cfg.Settle = time.Second
			if err := cfg.defaults(); err != nil {
				t.Fatal(err)
			}
			g := newGen(cfg)
			g.client = loopbackClient(cfg.Concurrency)
			defer g.client.CloseIdleConnections()
			if err := g.setup(t.Context()); err != nil {
				t.Fatal(err)
			}
			g.drive(t.Context())
			b, err := g.settle(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if v := b.Check(); len(v) != 0 {
				t.Fatalf("violations before anything was planted: %q", v)
			}
			tc.plant(t, rs.dir, g.products[0].ID)
			b, err = g.settle(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			v := b.Check()
			found := false
			for _, line := range v {
				found = found || strings.Contains(line, tc.want)
			}
			if !found || len(v) != 1 {
				t.Fatalf("violations = %q, want just one with %q", v, tc.want)
			}
		})
	}
}

// TestDialToNonLoopbackAddressRefused: a target that passes the URL check
// (localhost) but leads elsewhere, or a redirect to another host, is refused
// by the transport itself before any packet leaves.
func TestDialToNonLoopbackAddressRefused(t *testing.T) {
	c := loopbackClient(1)
	defer c.CloseIdleConnections()
	for _, u := range []string{"http://192.0.2.1:80/", "http://[2001:db8::1]:80/"} {
		req, err := http.NewRequestWithContext(t.Context(), "GET", u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s: no error", u)
		}
		if !errors.Is(err, ErrNotLoopback) {
			t.Errorf("GET %s: %v, want ErrNotLoopback", u, err)
		}
	}
}

// TestStopEndsTheLoadEarly: a closed Stop ends an hour's load at once, and
// the books are checked as after a full run.
func TestStopEndsTheLoadEarly(t *testing.T) {
	rs := startShop(t)
	cfg := rs.config(nil)
	cfg.Duration = time.Hour
	stop := make(chan struct{})
	cfg.Stop = stop
	close(stop)
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Violations) != 0 || rep.UnexpectedFailures() != 0 || !rep.PaymentsChecked {
		t.Fatalf("report after an early stop:\n%s", rep)
	}
}
