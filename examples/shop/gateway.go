package shop

import (
	"context"
	"net/http"
	"net/http/httputil"
	"strings"

	"github.com/pier-go/pier/health"
	"github.com/pier-go/pier/problem"
	"github.com/pier-go/pier/service"
)

// route sends requests whose path starts with prefix to service, with the
// "/api" in front of the path taken off.
type route struct{ prefix, service string }

var routes = []route{
	{"/api/users", Users},
	{"/api/login", Users},
	{"/api/products", Products},
	{"/api/orders", Orders},
}

// buildGateway makes the gateway service on the shop's address: a reverse
// proxy through the discovery-aware client to the routed services.
func (s *Shop) buildGateway() (*service.Service, error) {
	var svc *service.Service
	ready := health.CheckerFunc(func(ctx context.Context) error {
		for _, rt := range routes {
			if _, err := s.registry.Resolve(ctx, rt.service); err != nil {
				return err
			}
		}
		return nil
	})
	svc, err := s.newService(Gateway, s.cfg.Addr, ready)
	if err != nil {
		return nil, err
	}
	proxy := &httputil.ReverseProxy{
		Transport: svc.Client().Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			for _, rt := range routes {
				if match(pr.In.URL.Path, rt.prefix) {
					pr.Out.URL.Scheme = "http"
					pr.Out.URL.Host = rt.service
					pr.Out.Host = rt.service
					pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/api")
					pr.Out.URL.RawPath = ""
					return
				}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			problem.Write(w, r, problem.Problem{Status: http.StatusBadGateway, Detail: "the service did not answer"})
		},
	}
	svc.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range routes {
			if match(r.URL.Path, rt.prefix) {
				proxy.ServeHTTP(w, r)
				return
			}
		}
		problem.Write(w, r, problem.Problem{Status: http.StatusNotFound, Detail: "no route for " + r.URL.Path})
	})
	return svc, nil
}

func match(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
