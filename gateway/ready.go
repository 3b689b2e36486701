package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/pier-go/pier/problem"
)

// readyCache keeps each service's last readiness answer.
type readyCache struct {
	mu      sync.Mutex
	entries map[string]*readyEntry
}

type readyEntry struct {
	mu  sync.Mutex // held while the service is asked, so callers share one probe
	at  time.Time
	err error
}

// Ready reports whether every service in the route table has a ready
// instance: it asks GET http://<service>/health/ready through the gateway's
// client (so any instance the balancer picks, with its retries) and returns
// the failures, joined. Each service's answer is reused for
// [DefaultReadyTTL] ([WithReadiness]). Its shape is health.Checker's: pass
// health.CheckerFunc(g.Ready) to a service's readiness checks. It is safe for
// concurrent use.
func (g *Gateway) Ready(ctx context.Context) error {
	services := g.table.Load().services
	errs := make([]error, len(services))
	var wg sync.WaitGroup
	for i, svc := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.readyOf(ctx, svc)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (g *Gateway) readyOf(ctx context.Context, svc string) error {
	g.ready.mu.Lock()
	e := g.ready.entries[svc]
	if e == nil {
		e = &readyEntry{}
		g.ready.entries[svc] = e
	}
	g.ready.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if now := g.cfg.now(); !e.at.IsZero() && now.Sub(e.at) < g.cfg.readyTTL {
		return e.err
	}
	err := g.probe(ctx, svc)
	if ctx.Err() != nil {
		return err // the caller gave up: say so, but do not remember it
	}
	e.at, e.err = g.cfg.now(), err
	return err
}

func (g *Gateway) probe(ctx context.Context, svc string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+svc+g.cfg.readyPath, nil)
	if err != nil {
		return fmt.Errorf("gateway: service %q: %w", svc, err)
	}
	resp, err := g.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("gateway: service %q not ready: %w", svc, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gateway: service %q not ready: %s", svc, resp.Status)
	}
	return nil
}

// RoutesHandler returns a handler that lists the route table as JSON, in the
// schema of route files with every default filled in: what each route serves,
// its service, auth, scopes, limits and timeouts. Mount it on an admin
// listener only: it tells an attacker where the open routes are. It answers
// GET and HEAD; other methods get 405.
func (g *Gateway) RoutesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			problem.Status(w, r, http.StatusMethodNotAllowed, "")
			return
		}
		t := g.table.Load()
		f := fileSpec{Routes: make([]routeSpec, len(t.routes))}
		for i, rt := range t.routes {
			f.Routes[i] = specOf(rt)
		}
		body, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			problem.Status(w, r, http.StatusInternalServerError, "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodHead {
			_, _ = w.Write(append(body, '\n'))
		}
	})
}
