// Command benchserver serves GET /users/{id} in one of several configurations, so
// that scripts/loadtest.sh can measure them against each other under the same
// load. It is a tool for pier's benchmarks, not part of the library.
//
//	benchserver -mode bare|service|service-nolog|service-min -addr 127.0.0.1:8080
//	benchserver -mode proxy|proxy-pool|gateway -addr 127.0.0.1:8080 -token-file .cache/token
//
// service is the default stack; service-nolog is that without the access log;
// service-min is that without the request deadline too.
//
// proxy and gateway serve GET /users/{id} from a backend in the same process,
// on a loopback port of its own, so that both share the core they are pinned
// to: proxy through a bare httputil.ReverseProxy with a tuned transport to the
// backend's address, proxy-pool through the same proxy with a pool of copy
// buffers (as the gateway has), gateway through pier's gateway (an EdDSA token with a
// scope checked on every request, a per-subject rate limit that admits
// everything) and the discovery client over a memory registry. Each writes
// into -token-file a bearer token to send, so that every mode gets the same
// request: the gateway verifies the token, the proxies pass it on.
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
	mode := flag.String("mode", "bare", "bare, service, service-nolog, service-min, proxy, proxy-pool or gateway")
	tokenFile := flag.String("token-file", "", "proxy, proxy-pool, gateway: write the bearer token to send to this file")
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
	case "proxy", "proxy-pool", "gateway":
		return proxy(ctx, *mode, *addr, *tokenFile)
	}
	return fmt.Errorf("unknown mode %q", *mode)
}
