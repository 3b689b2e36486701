package discovery_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pier-go/pier/discovery"
)

// BenchmarkClient measures what the discovery client adds to a request over a
// plain http.Client with the same transport settings sending to a fixed
// address: the same loopback server, so the difference is the client alone
// (resolve from the cache, balancer, executor, request copy, telemetry). The
// first four use the global OpenTelemetry providers, which nothing sets here:
// the cost of telemetry nobody collects; the -sdk cases use the SDK.
func BenchmarkClient(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	reg := discovery.NewMemory()
	if err := reg.Register(context.Background(), discovery.Instance{ID: "u1", Service: "users", Addr: addr}); err != nil {
		b.Fatal(err)
	}
	plain := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: discovery.DefaultIdleConnsPerHost}}
	defer plain.CloseIdleConnections()
	client := discovery.NewClient(reg)
	defer client.CloseIdleConnections()
	// The same client with OpenTelemetry's SDK: every span recorded (and
	// dropped: no processor), or none sampled, as services run in
	// production; metrics read by a reader that is never collected.
	sdkClient := func(sampler sdktrace.Sampler) *http.Client {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() {
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		})
		c := discovery.NewClient(reg, discovery.WithTracerProvider(tp), discovery.WithMeterProvider(mp))
		b.Cleanup(c.CloseIdleConnections)
		return c
	}
	traced, unsampled := sdkClient(sdktrace.AlwaysSample()), sdkClient(sdktrace.NeverSample())

	// Requests carry a cancelable context, as a handler's calls do: net/http
	// takes a costlier path for those than for context.Background.
	cancelable := func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	deadline := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), waitFor)
	}
	for _, c := range []struct {
		name   string
		client *http.Client
		url    string
		ctx    func() (context.Context, context.CancelFunc)
	}{
		{"plain", plain, srv.URL + "/users/42", cancelable},
		{"discovery", client, "http://users/users/42", cancelable},
		{"plain-with-deadline", plain, srv.URL + "/users/42", deadline},
		{"discovery-with-deadline", client, "http://users/users/42", deadline},
		{"discovery-sdk-traced", traced, "http://users/users/42", cancelable},
		{"discovery-sdk-unsampled", unsampled, "http://users/users/42", cancelable},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := c.ctx()
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", c.url, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}

// BenchmarkSlowInstance reports the latency callers see when one of three
// instances answers 20 times slower (1 ms against 20 ms), under each balancer:
// mean, p99 and the slow instance's share of requests.
func BenchmarkSlowInstance(b *testing.B) {
	for _, bal := range []discovery.Balancer{discovery.RoundRobin, discovery.Random, discovery.P2C} {
		b.Run(bal.String(), func(b *testing.B) {
			reg := discovery.NewMemory()
			var slowHits, hits atomic.Int64
			for i := range 3 {
				delay := time.Millisecond
				if i == 0 {
					delay = 20 * time.Millisecond
				}
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					hits.Add(1)
					if i == 0 {
						slowHits.Add(1)
					}
					work(delay)
				}))
				defer srv.Close()
				if err := reg.Register(context.Background(), discovery.Instance{
					ID: fmt.Sprint(i), Service: "users", Addr: strings.TrimPrefix(srv.URL, "http://")}); err != nil {
					b.Fatal(err)
				}
			}
			client := discovery.NewClient(reg, discovery.WithBalancer(bal))
			defer client.CloseIdleConnections()
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(2) // 4 callers on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					start := time.Now()
					resp, err := client.Get("http://users/")
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					d := time.Since(start)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			})
			slices.Sort(lat)
			var sum time.Duration
			for _, d := range lat {
				sum += d
			}
			b.ReportMetric(float64(sum.Microseconds())/float64(len(lat))/1000, "mean-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(slowHits.Load())/float64(hits.Load()), "slow-share")
		})
	}
}
