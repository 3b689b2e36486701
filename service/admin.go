package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/pier-go/pier/internal/pprofhttp"
)

// AdminAddr returns the address of the admin listener ([WithAdminAddr]), or nil
// without one or before [Service.Run] has bound it.
func (s *Service) AdminAddr() net.Addr {
	if a := s.adminAddr.Load(); a != nil {
		return *a
	}
	return nil
}

// adminMux returns the admin listener's routes: the health detail with each
// check's error, the metrics endpoint at path when metrics is not nil, and the
// profiles with pprof.
func adminMux(detail, metrics http.Handler, path string, pprof bool) (_ *http.ServeMux, err error) {
	mux := http.NewServeMux()
	defer func() { // ServeMux panics on a bad or conflicting pattern
		if v := recover(); v != nil {
			err = fmt.Errorf("admin routes: %v", v)
		}
	}()
	mux.Handle("GET "+HealthPath, detail)
	if metrics != nil {
		mux.Handle("GET "+path, metrics)
	}
	if pprof {
		pprofhttp.Register(mux)
	}
	return mux, nil
}

// adminServer serves the health detail, metrics and profiling endpoints on
// the admin listener, away from the public one.
type adminServer struct {
	ln     net.Listener
	srv    *http.Server
	served chan error
	cancel context.CancelFunc // ends the requests in flight (CPU profiles, traces)
	name   string
}

// listenAdmin binds the admin address.
func (s *Service) listenAdmin(ctx context.Context) (*adminServer, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.adminAddr)
	if err != nil {
		return nil, fmt.Errorf("service %q: admin listener: %w", s.name, err)
	}
	addr := ln.Addr()
	s.adminAddr.Store(&addr)
	return &adminServer{
		ln:   ln,
		name: s.name,
		srv: &http.Server{
			Handler:           s.admin,
			ReadHeaderTimeout: DefaultReadHeaderTimeout,
			IdleTimeout:       DefaultIdleTimeout,
			MaxHeaderBytes:    DefaultMaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// serve starts serving in the background; shutdown stops it.
func (a *adminServer) serve(ctx context.Context) {
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.srv.BaseContext = func(net.Listener) context.Context { return base }
	a.served = make(chan error, 1)
	go func() { a.served <- a.srv.Serve(a.ln) }()
}

// shutdown ends the requests in flight, which are only scrapes and profiles,
// and stops the server within timeout.
func (a *adminServer) shutdown(timeout time.Duration) []error {
	a.cancel() // a 30 s CPU profile must not hold the stop
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	if err := a.srv.Shutdown(ctx); err != nil {
		_ = a.srv.Close()
		errs = append(errs, fmt.Errorf("service %q: admin shutdown: %w", a.name, err))
	}
	if err := <-a.served; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("service %q: admin serve: %w", a.name, err))
	}
	return errs
}
