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
// recording every span or sampling none.
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
		{"global-noop", client()},
		{"sdk-traced", client(sdk(sdktrace.AlwaysSample())...)},
		{"sdk-unsampled", client(sdk(sdktrace.NeverSample())...)},
	}
}
