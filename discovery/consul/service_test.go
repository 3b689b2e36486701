package consul_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pier-go/pier/discovery/consul"
	"github.com/pier-go/pier/discovery/discoverytest"
	"github.com/pier-go/pier/service"
)

// TestServiceInConsul runs a real Service with the Consul registry: it is in the
// catalog with its HTTP check passing against its own /health/ready, and when
// Run's context ends it leaves the catalog while its listener still serves.
func TestServiceInConsul(t *testing.T) {
	t.Parallel()
	a := sharedAgent(t)
	client := a.client(t)
	reg := newRegistry(t, client, consul.WithCheckInterval(time.Second))
	name := discoverytest.ServiceName("svc")
	id := name + "-1"

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	const drain = 5 * time.Second // room to look at the service after it deregistered
	svc, err := service.New(name,
		service.WithListener(ln),
		service.WithLogger(slog.New(slog.DiscardHandler)),
		service.WithRegistry(reg),
		service.WithInstanceID(id),
		service.WithVersion("1.0.0"),
		service.WithShutdown(drain, waitFor),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- svc.Run(ctx) }()

	waitUntil(t, "the service is in the catalog", func() error {
		ss, _, err := client.Catalog().Service(name, "", nil)
		if err != nil || len(ss) != 1 || ss[0].ServiceID != id || ss[0].ServiceMeta["version"] != "1.0.0" {
			return fmt.Errorf("catalog has %d instances (%v)", len(ss), err)
		}
		return nil
	})
	inCatalog := time.Since(start)
	waitUntil(t, "its check of /health/ready passes", checkRan(client, id))
	t.Logf("in the catalog after %v, its first HTTP check passed after %v", inCatalog, time.Since(start))
	if got, err := reg.Resolve(ctx, name); err != nil || len(got) != 1 || got[0].Addr != addr {
		t.Fatalf("Resolve = %v, %v; want the service at %s", got, err, addr)
	}

	cancel()
	waitUntil(t, "the service leaves the catalog", func() error {
		ss, _, err := client.Catalog().Service(name, "", nil)
		if err != nil || len(ss) != 0 {
			return fmt.Errorf("catalog has %d instances (%v)", len(ss), err)
		}
		return nil
	})
	// Deregistered, and the listener still serves: liveness 200, readiness 503.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitFor}
	for path, want := range map[string]int{service.LivePath: 200, service.ReadyPath: 503} {
		resp, err := hc.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s after deregistration: %v; the listener closed before deregistration", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s during the drain = %d, want %d", path, resp.StatusCode, want)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(drain + waitFor):
		t.Fatal("Run did not return")
	}
}
