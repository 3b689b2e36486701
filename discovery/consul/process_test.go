package consul_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary, re-executed, run TestHelperProcess as a
// real instance (the standard helper-process pattern of os/exec's tests).
const helperEnv = "PIER_CONSUL_TEST_HELPER"

// TestHelperProcess is not a test: re-executed by startHelperProcess with
// helperEnv set, it serves /health/ready on a free loopback port, prints
// "ADDR host:port", and serves until its stdin closes (its parent is gone) or
// a minute passes. It returns at once otherwise.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ready\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if _, err := os.Stdout.WriteString("ADDR " + ln.Addr().String() + "\n"); err != nil {
		t.Fatal(err)
	}
	stdin := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdin)
	}()
	timer := time.NewTimer(time.Minute)
	select {
	case <-stdin:
	case <-timer.C:
	}
	_ = srv.Close()
	<-served
}

// helperProcess is a running TestHelperProcess.
type helperProcess struct {
	cmd  *exec.Cmd
	addr string
	read chan struct{} // closed when its stdout is at EOF: it has exited
}

// startHelperProcess starts a child process serving /health/ready and returns
// it once it serves; it is killed, if still alive, when t ends.
func startHelperProcess(t *testing.T) *helperProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &helperProcess{cmd: cmd, read: make(chan struct{})}
	addrs := make(chan string, 1)
	go func() {
		defer close(p.read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrs <- addr
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = stdin.Close()
		<-p.read
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("helper process stderr:\n%s", stderr)
		}
	})
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case p.addr = <-addrs:
	case <-p.read:
		t.Fatalf("helper process exited before serving; stderr:\n%s", stderr)
	case <-timer.C:
		t.Fatalf("helper process did not serve within %v; stderr:\n%s", waitFor, stderr)
	}
	return p
}

// kill sends SIGKILL to the process and waits until it is gone.
func (p *helperProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case <-p.read:
	case <-timer.C:
		t.Fatalf("helper process still writing %v after SIGKILL", waitFor)
	}
}
