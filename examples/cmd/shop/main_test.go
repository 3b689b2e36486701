package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestShopProcess builds and starts the real command, waits for it to print
// that it is up, lists the seeded products and logs in as the admin with the
// password it printed, then sends SIGTERM and checks that it stops cleanly.
func TestShopProcess(t *testing.T) {
	bin := t.TempDir() + "/shop"
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // the program binds it; a free port from the kernel

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-addr", addr, "-data", t.TempDir())
	cmd.Env = append(os.Environ(), "LOG_FORMAT=json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	password := ""
	for line := range lines {
		if _, rest, ok := strings.Cut(line, "admin: admin@example.com / "); ok {
			password, _, _ = strings.Cut(rest, " ")
		}
		if strings.HasPrefix(line, "the shop is up at") {
			break
		}
	}
	if password == "" {
		t.Fatalf("no generated admin password printed; stderr:\n%s", stderr.String())
	}

	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/api/products")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Products []struct{ ID string } `json:"products"`
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(page.Products) == 0 {
		t.Fatalf("GET /api/products = %d, %d products, %v", resp.StatusCode, len(page.Products), err)
	}
	resp, err = client.Post("http://"+addr+"/api/login", "application/json",
		strings.NewReader(`{"email":"admin@example.com","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin login with the printed password: %d", resp.StatusCode)
	}
	client.CloseIdleConnections()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range lines { // drain until the program closes stdout
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("shop exited with %v; stderr:\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), `"msg":"service stopped"`); n != 5 {
		t.Fatalf("%d services logged a clean stop, want 5; stderr:\n%s", n, stderr.String())
	}
}

// TestErrorLineSaidShopTwice: the shop package's errors say "shop: "
// already; the command's own do not. Each line says it once.
func TestErrorLineSaidShopTwice(t *testing.T) {
	for _, tt := range []struct{ err, want string }{
		{"shop: gateway stopped before it registered", "shop: gateway stopped before it registered"},
		{"no -data and no user cache directory: $HOME is not defined", "shop: no -data and no user cache directory: $HOME is not defined"},
	} {
		if got := errorLine(errors.New(tt.err)); got != tt.want {
			t.Errorf("errorLine(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
