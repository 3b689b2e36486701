package resilience_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"

	"github.com/pier-go/pier/resilience"
)

// BenchmarkTransport measures what the policy chain adds to a round trip: over
// an in-memory next, which isolates the chain, and over loopback HTTP.
func BenchmarkTransport(b *testing.B) {
	stub := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	chains := []struct {
		name     string
		policies func() []failsafe.Policy[*http.Response]
	}{
		{"next", nil},
		{"retry", func() []failsafe.Policy[*http.Response] {
			return []failsafe.Policy[*http.Response]{resilience.NewRetryBuilder().Build()}
		}},
		{"retry+breaker", func() []failsafe.Policy[*http.Response] {
			return []failsafe.Policy[*http.Response]{resilience.NewRetryBuilder().Build(), resilience.NewCircuitBreakerBuilder().Build()}
		}},
		{"retry+breaker+timeout", func() []failsafe.Policy[*http.Response] {
			return []failsafe.Policy[*http.Response]{resilience.NewRetryBuilder().Build(), resilience.NewCircuitBreakerBuilder().Build(), resilience.NewTimeoutBuilder(time.Second).Build()}
		}},
	}
	for _, next := range []string{"memory", "loopback"} {
		for _, chain := range chains {
			b.Run(next+"/"+chain.name, func(b *testing.B) {
				var rt http.RoundTripper = stub
				url := "http://users/users/42"
				if next == "loopback" {
					srv := newServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Write([]byte(`{"id":42}`))
					}))
					rt, url = newTransport(b), srv.URL
				}
				if chain.policies != nil {
					rt = resilience.Transport(rt, chain.policies()...)
				}
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				b.ReportAllocs()
				for b.Loop() {
					resp, err := rt.RoundTrip(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}
