package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/gateway"
	"github.com/pier-go/pier/internal/bufpool"
)

// benchBackend is the upstream both benchmarks proxy to.
func benchBackend(b *testing.B) *httptest.Server {
	b.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":42,"name":"Ada"}`)
	}))
	b.Cleanup(s.Close)
	return s
}

// tunedTransport keeps enough idle connections for the benchmark's
// concurrency, where net/http's default of 2 per host would reconnect.
func tunedTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
	}
}

// drive sends GET path to front from parallel clients until b.N requests.
func drive(b *testing.B, front *httptest.Server, path string, header http.Header) {
	b.Helper()
	tr := tunedTransport()
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	target := front.URL + path
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, target, nil)
			req.Header = header.Clone()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkGateway: a GET through the gateway with JWT verification (EdDSA),
// a per-subject rate limit that admits everything, and the discovery client.
func BenchmarkGateway(b *testing.B) {
	backend := benchBackend(b)
	reg := discovery.NewMemory()
	if err := reg.Register(context.Background(), discovery.Instance{ID: "users-1", Service: "users",
		Addr: backend.Listener.Addr().String()}); err != nil {
		b.Fatal(err)
	}
	client := discovery.NewClient(reg)
	b.Cleanup(client.CloseIdleConnections)
	is := newIssuer(b)
	gw, err := gateway.New(client, []gateway.Route{{Name: "users", Prefix: "/api/users", Service: "users",
		Rewrite: "/users", Scopes: []string{"users:read"}, RateLimit: &gateway.RateLimit{Rate: 1e9, Burst: 1e9}}},
		gateway.WithVerifier(is.v))
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(gw)
	b.Cleanup(front.Close)
	drive(b, front, "/api/users/42", http.Header{"Authorization": {"Bearer " + is.token(b, "u1", "users:read")}})
}

// BenchmarkBareProxy: the same GET through a bare httputil.ReverseProxy with a
// tuned transport to the backend's fixed address: the floor the gateway is
// measured against.
func BenchmarkBareProxy(b *testing.B) { benchBareProxy(b, nil) }

// BenchmarkBareProxyPool: the bare proxy with a pool of copy buffers, as the
// gateway has, so that it does not allocate 32 KiB per response.
func BenchmarkBareProxyPool(b *testing.B) { benchBareProxy(b, &bufpool.Pool{}) }

func benchBareProxy(b *testing.B, pool httputil.BufferPool) {
	backend := benchBackend(b)
	target, _ := url.Parse(backend.URL)
	tr := tunedTransport()
	b.Cleanup(tr.CloseIdleConnections)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:  tr,
		BufferPool: pool,
	}
	front := httptest.NewServer(proxy)
	b.Cleanup(front.Close)
	// The same request as the gateway gets, token and all, passed on as it is.
	drive(b, front, "/users/42", http.Header{"Authorization": {"Bearer " + newIssuer(b).token(b, "u1", "users:read")}})
}
