// Command benchserver serves GET /users/{id} in one of several configurations, so
// that scripts/loadtest.sh can measure them against each other under the same
// load. It is a tool for pier's benchmarks, not part of the library.
//
//	benchserver -mode bare|service|service-nolog|service-min -addr 127.0.0.1:8080
//
// service is the default stack; service-nolog is that without the access log;
// service-min is that without the request deadline too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/pier-go/pier/service"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

func user(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`","name":"Ada"}`)
}

func run() error {
	mode := flag.String("mode", "bare", "bare, service, service-nolog or service-min")
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch *mode {
	case "bare":
		mux := http.NewServeMux()
		mux.HandleFunc("GET /users/{id}", user)
		srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		context.AfterFunc(ctx, func() { _ = srv.Close() })
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case "service", "service-nolog", "service-min":
		// The access log goes where a container's would: a file descriptor,
		// one write per line.
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer devnull.Close()
		logger := slog.New(slog.NewJSONHandler(devnull, nil))
		opts := []service.Option{
			service.WithAddr(*addr),
			service.WithLogger(logger),
			service.WithShutdown(0, time.Second), service.WithoutDrainDelay(),
		}
		if *mode != "service" {
			opts = append(opts, service.WithoutAccessLog())
		}
		if *mode == "service-min" {
			opts = append(opts, service.WithoutRequestTimeout())
		}
		svc, err := service.New("users", opts...)
		if err != nil {
			return err
		}
		svc.HandleFunc("GET /users/{id}", user)
		return svc.Run(ctx)
	}
	return fmt.Errorf("unknown mode %q", *mode)
}
