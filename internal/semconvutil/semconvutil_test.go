package semconvutil

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSpanName(t *testing.T) {
	for _, tt := range []struct{ method, route, want string }{
		{"GET", "/users/{id}", "GET /users/{id}"},
		{"POST", "", "POST"},
		{"", "", "GET"},
		{"QUERY", "/search", "QUERY /search"},
		{"BREW", "/pot", "HTTP /pot"},
	} {
		if got := SpanName(tt.method, tt.route); got != tt.want {
			t.Errorf("SpanName(%q, %q) = %q, want %q", tt.method, tt.route, got, tt.want)
		}
	}
}

func TestMethodAttrs(t *testing.T) {
	m, orig := MethodAttrs("BREW")
	if m.Value.AsString() != "_OTHER" || orig.Value.AsString() != "BREW" {
		t.Errorf("MethodAttrs(BREW) = %v, %v", m, orig)
	}
	m, orig = MethodAttrs("PATCH")
	if m.Value.AsString() != "PATCH" || orig.Valid() {
		t.Errorf("MethodAttrs(PATCH) = %v, %v", m, orig)
	}
}

func TestProtocolVersion(t *testing.T) {
	for _, tt := range []struct {
		major, minor int
		want         string
	}{{1, 1, "1.1"}, {1, 0, "1.0"}, {2, 0, "2"}, {3, 0, "3"}, {0, 9, "0.9"}} {
		if got := ProtocolVersion(tt.major, tt.minor); got != tt.want {
			t.Errorf("ProtocolVersion(%d, %d) = %q, want %q", tt.major, tt.minor, got, tt.want)
		}
	}
}

func TestSplitHostPort(t *testing.T) {
	for _, tt := range []struct {
		in   string
		host string
		port int
	}{{"a:80", "a", 80}, {"[::1]:8080", "::1", 8080}, {"a", "a", 0}, {"[::1]", "::1", 0}, {"a:x", "a", 0}, {"a:70000", "a", 0}} {
		if h, p := SplitHostPort(tt.in); h != tt.host || p != tt.port {
			t.Errorf("SplitHostPort(%q) = %q, %d; want %q, %d", tt.in, h, p, tt.host, tt.port)
		}
	}
}

func TestHeaderCarrierRoundTripsTraceContext(t *testing.T) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	h := http.Header{}
	h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("Baggage", "user=ada")
	ctx := prop.Extract(t.Context(), HeaderCarrier(h))
	out := http.Header{}
	prop.Inject(ctx, HeaderCarrier(out))
	if out.Get("Traceparent") != h.Get("Traceparent") || out.Get("Baggage") != "user=ada" {
		t.Fatalf("injected %v, want the extracted trace context and baggage", out)
	}
	for k := range out {
		if k != http.CanonicalHeaderKey(k) {
			t.Fatalf("key %q was written in lower case", k)
		}
	}
}
