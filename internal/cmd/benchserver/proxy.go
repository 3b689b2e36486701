package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/auth"
	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/gateway"
	"github.com/pier-go/pier/internal/bufpool"
)

// proxy serves mode "proxy", "proxy-pool" or "gateway" on addr in front of a
// backend that runs in this process, and returns when ctx ends.
func proxy(ctx context.Context, mode, addr, tokenFile string) error {
	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", user)
	backend := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = backend.Serve(backendLn) }()
	defer backend.Close()

	// Every mode gets the same request: one with a bearer token, which the
	// gateway verifies and the proxies pass on as it is.
	pub, token, err := newToken()
	if err != nil {
		return err
	}
	if tokenFile != "" {
		if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
			return err
		}
	}
	var front http.Handler
	switch mode {
	case "proxy", "proxy-pool":
		target := &url.URL{Scheme: "http", Host: backendLn.Addr().String()}
		tr := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
		}
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.SetXForwarded()
			},
			Transport: tr,
		}
		if mode == "proxy-pool" {
			rp.BufferPool = &bufpool.Pool{}
		}
		front = rp
	case "gateway":
		gw, closeGW, err := newGateway(ctx, backendLn.Addr().String(), pub)
		if err != nil {
			return err
		}
		defer closeGW()
		front = gw
	}
	srv := &http.Server{Addr: addr, Handler: front, ReadHeaderTimeout: 10 * time.Second}
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newToken returns a new Ed25519 public key and a token signed with its
// private key, which the gateway accepts on its route.
func newToken() (ed25519.PublicKey, string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"iss": "https://users.example", "aud": "shop",
		"sub": "bench", "scope": "users:read", "exp": time.Now().Add(24 * time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(priv)
	return pub, signed, err
}

// newGateway returns pier's gateway routing /users to the backend at addr,
// accepting the tokens newToken signed for pub.
func newGateway(ctx context.Context, addr string, pub ed25519.PublicKey) (http.Handler, func(), error) {
	v, err := auth.NewVerifier([]auth.Issuer{{Issuer: "https://users.example", Audiences: []string{"shop"},
		Algorithms: []string{"EdDSA"}, Keys: []auth.Key{{ID: "k1", Algorithm: "EdDSA", Key: pub}}}})
	if err != nil {
		return nil, nil, err
	}
	reg := discovery.NewMemory()
	if err := reg.Register(ctx, discovery.Instance{ID: "users-1", Service: "users", Addr: addr}); err != nil {
		_ = v.Close()
		return nil, nil, err
	}
	client := discovery.NewClient(reg)
	gw, err := gateway.New(client, []gateway.Route{{Name: "users", Prefix: "/users", Service: "users",
		Scopes: []string{"users:read"}, RateLimit: &gateway.RateLimit{Rate: 1e9, Burst: 1e9}}},
		gateway.WithVerifier(v))
	if err != nil {
		_ = v.Close()
		return nil, nil, err
	}
	return gw, func() { client.CloseIdleConnections(); _ = v.Close() }, nil
}
