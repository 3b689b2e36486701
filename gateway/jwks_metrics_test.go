package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pier-go/pier/auth"
	"github.com/pier-go/pier/gateway"
	"github.com/pier-go/pier/internal/metrictest"
)

// TestJWKSKeySetAgeMetric: pier.gateway.jwks.age is the time since an issuer's
// key set was last fetched, by the gateway's clock, and pier.gateway.jwks.keys
// how many usable keys it holds. An issuer whose endpoint never answered
// shows 0 keys and no age.
func TestJWKSKeySetAgeMetric(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: jwkset.AlgEdDSA}})
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(set)
	}))
	defer good.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()

	clock := newFakeClock()
	v, err := auth.NewVerifier([]auth.Issuer{
		{Issuer: "https://users.example", Audiences: []string{"shop"}, Algorithms: []string{"EdDSA"}, JWKSURL: good.URL},
		{Issuer: "https://partner.example", Audiences: []string{"shop"}, Algorithms: []string{"EdDSA"}, JWKSURL: down.URL},
	}, auth.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = v.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for v.KeySets()[1].Keys == 0 { // users.example, after partner.example: sorted
		select {
		case <-ctx.Done():
			t.Fatal("the key set was never fetched")
		case <-time.After(time.Millisecond):
		}
	}

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	_ = newEnv(t, []gateway.Route{{Name: "api", Prefix: "/api", Service: "api"}},
		gateway.WithVerifier(v), gateway.WithMeterProvider(mp), gateway.WithClock(clock.Now))
	users := attribute.String("issuer", "https://users.example")
	partner := attribute.String("issuer", "https://partner.example")

	clock.Add(90 * time.Second)
	for _, w := range []struct {
		name   string
		attr   attribute.KeyValue
		value  float64
		exists bool
	}{
		{"pier.gateway.jwks.age", users, 90, true},
		{"pier.gateway.jwks.keys", users, 1, true},
		{"pier.gateway.jwks.keys", partner, 0, true},
		{"pier.gateway.jwks.age", partner, 0, false},
	} {
		got, ok := metrictest.Value(t, reader, w.name, w.attr)
		if ok != w.exists || got != w.value {
			t.Errorf("%s{%v} = %v (present %v), want %v (present %v)", w.name, w.attr.Value.AsString(), got, ok, w.value, w.exists)
		}
	}
}
