package discovery_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pier-go/pier/discovery"
)

// cannedTransport answers every request at once with 200 and a short body,
// without a network: what remains is the client's own work.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), ContentLength: 2, Request: req}, nil
}

// BenchmarkClientOverhead measures the discovery client's own cost per
// request, over a transport that answers from memory: resolve, balancer,
// policies, request copy and telemetry, without the noise of a round trip:
// with the global providers, which nothing sets here, and with the SDK,
// recording every span or sampling none. baseline is an http.Client over the
// same transport, without the discovery client: the cost of net/http and the
// transport, which the others include.
func BenchmarkClientOverhead(b *testing.B) {
	reg := discovery.NewMemory()
	if err := reg.Register(context.Background(), discovery.Instance{ID: "u1", Service: "users", Addr: "10.0.0.1:8080"}); err != nil {
		b.Fatal(err)
	}
	for _, c := range overheadCases(b, reg) {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", "http://users/users/42", nil)
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

type overheadCase struct {
	name   string
	client *http.Client
}

func overheadCases(b *testing.B, reg *discovery.Memory) []overheadCase {
	sdk := func(sampler sdktrace.Sampler) []discovery.ClientOption {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() {
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		})
		return []discovery.ClientOption{discovery.WithTracerProvider(tp), discovery.WithMeterProvider(mp)}
	}
	client := func(opts ...discovery.ClientOption) *http.Client {
		return discovery.NewClient(reg, append(opts, discovery.WithTransport(cannedTransport{}))...)
	}
	return []overheadCase{
		{"baseline", &http.Client{Transport: cannedTransport{}}}, // net/http alone: what the others add to
		{"global-noop", client()},
		{"sdk-traced", client(sdk(sdktrace.AlwaysSample())...)},
		{"sdk-unsampled", client(sdk(sdktrace.NeverSample())...)},
	}
}

// TestClientAllocationBudget: per request, the discovery client with its
// defaults (P2C, retries within a budget, breaker, ejection, telemetry with
// the global providers) allocates at most 12 objects more than net/http
// alone, over the same transport: the design's budget. A request that
// succeeds at once never meets failsafe's execution machinery, which alone
// costs more than that.
func TestClientAllocationBudget(t *testing.T) {
	reg := discovery.NewMemory()
	if err := reg.Register(context.Background(), discovery.Instance{ID: "u1", Service: "users", Addr: "10.0.0.1:8080"}); err != nil {
		t.Fatal(err)
	}
	allocs := func(c *http.Client) float64 {
		req, err := http.NewRequest("GET", "http://users/users/42", nil)
		if err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(200, func() {
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		})
	}
	base := allocs(&http.Client{Transport: cannedTransport{}})
	got := allocs(discovery.NewClient(reg, discovery.WithTransport(cannedTransport{})))
	t.Logf("net/http alone %.0f allocations per request, with the discovery client %.0f", base, got)
	if got-base > 12 {
		t.Fatalf("the discovery client adds %.0f allocations per request, want at most 12", got-base)
	}
}
