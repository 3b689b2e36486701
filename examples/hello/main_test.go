package main

import (
	"bufio"
	"context"
	"encoding/json"
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

// TestHelloProcess builds and starts the real program, calls it, sends SIGTERM
// and checks that it stops cleanly: the path a user takes with go run.
func TestHelloProcess(t *testing.T) {
	bin := t.TempDir() + "/hello"
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // the program binds it; a free port from the kernel

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "ADDR="+addr, "LOG_FORMAT=json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100)
	go func() {
		defer close(logs)
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			logs <- s.Text()
		}
	}()
	// Wait for the "service started" line rather than polling the port.
	for line := range logs {
		if strings.Contains(line, `"msg":"service started"`) {
			break
		}
	}

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/hello/pier")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	err = json.NewDecoder(resp.Body).Decode(&body)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || body["greeting"] != "hello, pier" {
		t.Fatalf("GET /hello/pier = %d %v, %v", resp.StatusCode, body, err)
	}
	client.CloseIdleConnections()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for line := range logs {
		rest = append(rest, line)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("hello exited with %v; logs:\n%s", err, strings.Join(rest, "\n"))
	}
	if !strings.Contains(strings.Join(rest, "\n"), `"msg":"service stopped"`) {
		t.Fatalf("no clean stop in the logs:\n%s", strings.Join(rest, "\n"))
	}
}
