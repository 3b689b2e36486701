package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/examples/shop/users"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBadFlags: each bad configuration is refused with exit code 2 and a
// line naming what is wrong, before any request is sent.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-admin-password", "x", "-target", "http://10.1.2.3:8080"}, "not a loopback address: target http://10.1.2.3:8080"},
		{[]string{"-admin-password", "x", "-target", "http://example.com"}, "not a loopback address: target http://example.com"},
		{[]string{"-admin-password", "x", "-payments", "http://192.168.0.1:9000"}, "not a loopback address: payments"},
		{[]string{"-admin-password", "x", "-target", "https://127.0.0.1"}, `target "https://127.0.0.1" is not an http://host:port URL`},
		{[]string{}, "the admin's email and password are required"},
		{[]string{"-admin-password", "x", "-rate", "0"}, "must be positive"},
		{[]string{"-admin-password", "x", "-stock", "1000"}, "stock 1000 is not within 1 and 999"},
		{[]string{"-admin-password", "x", "-max-failures", "-1"}, "must not be negative"},
		{[]string{"-admin-password", "x", "extra"}, "unexpected arguments"},
		{[]string{"-no-such-flag"}, "flag provided but not defined"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2; stderr %q", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q, want %q in it", stderr.String(), tc.want)
			}
		})
	}
}

// TestRunBalancesAndExitsZero runs the command against the shop in this
// process: exit code 0, progress lines on stderr, the summary on stdout.
func TestRunBalancesAndExitsZero(t *testing.T) {
	gateway, payments := startShop(t)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-target", gateway, "-payments", payments, "-admin-password", "admin-password",
		"-duration", "1500ms", "-rate", "40", "-users", "4", "-products", "2", "-stock", "30", "-progress", "500ms"}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if !strings.Contains(stdout.String(), "books balance (stock, idempotency keys, pending orders, payments)") {
		t.Errorf("stdout does not say the books balance")
	}
	if !strings.Contains(stderr.String(), "failures 0") {
		t.Errorf("stderr has no progress line")
	}
}

// TestInterruptedRunExitsTwo: a run stopped before its end checks nothing
// and exits 2.
func TestInterruptedRunExitsTwo(t *testing.T) {
	gateway, _ := startShop(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-target", gateway, "-admin-password", "admin-password"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit code %d, want 2; stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
}

// startShop runs the shop on free loopback ports until the test ends and
// returns the gateway's and the payments service's URLs.
func startShop(t *testing.T) (gateway, payments string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := shop.Open(ctx, shop.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler),
		PasswordParams: users.PasswordParams{Memory: 1024, Time: 1, Threads: 1}, LoginRate: 1000, LoginBurst: 1000})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := s.Seed(ctx, "admin-password"); err != nil {
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shop run: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("shop close: %v", err)
		}
	})
	pay, _ := s.Addr(shop.Payments)
	return "http://" + gw.String(), "http://" + pay.String()
}
