// Command hello is the smallest pier service: one route, health endpoints,
// graceful shutdown. Copy it as a starter.
//
//	go run ./examples/hello
//	curl localhost:8080/hello/pier
//	curl localhost:8080/health
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/pier-go/pier/service"
)

func main() {
	if err := run(); err != nil {
		slog.Error("hello", "error", err)
		os.Exit(1)
	}
}

func run() error {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	svc, err := service.New("hello", service.WithAddr(addr), service.WithVersion("0.1.0"))
	if err != nil {
		return err
	}
	svc.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		_ = service.WriteJSON(w, http.StatusOK, map[string]string{
			"greeting": fmt.Sprintf("hello, %s", r.PathValue("name")),
		})
	})

	// Signals belong to main. After the first one, stop restores the default
	// handling, so a second Ctrl-C ends the process without waiting for the drain.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	return svc.Run(ctx)
}
