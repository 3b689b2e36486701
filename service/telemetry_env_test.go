package service_test

// Tests of the providers a Service builds from OTEL_* environment variables.
// t.Setenv makes them sequential: none may call t.Parallel.

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pier-go/pier/service"
)

// otelEnv are the variables these tests set, cleared first so that the
// environment the tests run in cannot change their outcome.
var otelEnv = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME",
	"OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT",
}

func setOTelEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, "")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

// recordingRoute serves GET /users/{id}, noting whether its span records.
func recordingRoute(recording *bool, mu *sync.Mutex) func(*service.Service) {
	return func(s *service.Service) {
		s.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			*recording = trace.SpanFromContext(r.Context()).IsRecording()
			mu.Unlock()
		})
	}
}

func TestEnvExportersNoneBuildNothing(t *testing.T) {
	// "none" wins over an endpoint, which alone would ask for OTLP.
	setOTelEnv(t,
		"OTEL_TRACES_EXPORTER", "none", "OTEL_METRICS_EXPORTER", "none",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	var mu sync.Mutex
	recording := true
	r := start(t, recordingRoute(&recording, &mu))
	get(t, noKeepAlive(), r.url+"/users/42")
	mu.Lock()
	defer mu.Unlock()
	if recording {
		t.Error("the request's span records: a provider was built although every exporter is none")
	}
	if lines := r.logs.find(t, "request", "GET /users/{id}"); len(lines) != 1 || lines[0]["trace_id"] != nil {
		t.Errorf("access log = %v, want one line without trace_id (the global provider makes no trace)", lines)
	}
	// The Service's own metrics still work.
	if scrape(t, r.url+"/metrics")["http_server_request_duration_seconds"] == nil {
		t.Error("no request metrics at /metrics")
	}
}

func TestEnvUnknownExporterFailsNew(t *testing.T) {
	setOTelEnv(t, "OTEL_TRACES_EXPORTER", "carrier-pigeon")
	if _, err := service.New("test"); err == nil || !strings.Contains(err.Error(), "OTEL_") {
		t.Fatalf("New = %v, want an error naming the OTEL_* environment", err)
	}
}

// otlpCollector is an OTLP/HTTP receiver on loopback that keeps what it is sent.
type otlpCollector struct {
	mu      sync.Mutex
	traces  []*collectortrace.ExportTraceServiceRequest
	metrics []*collectormetrics.ExportMetricsServiceRequest
	other   []string
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/traces":
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.traces = append(c.traces, &req)
	case r.Method == "POST" && r.URL.Path == "/v1/metrics":
		var req collectormetrics.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.metrics = append(c.metrics, &req)
	default:
		c.other = append(c.other, r.Method+" "+r.URL.Path)
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func TestEnvOTLPExportFlushedWhenRunEnds(t *testing.T) {
	col := &otlpCollector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	// No exporter named: an endpoint alone asks for OTLP, autoexport's default.
	setOTelEnv(t,
		"OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf",
		"OTEL_TRACES_SAMPLER", "always_on")
	var mu sync.Mutex
	recording := false
	r := start(t, recordingRoute(&recording, &mu), service.WithVersion("1.2.3"))
	get(t, noKeepAlive(), r.url+"/users/42")
	mu.Lock()
	if !recording {
		t.Error("the request's span does not record: no provider was built from the environment")
	}
	mu.Unlock()

	col.mu.Lock()
	early := len(col.traces)
	col.mu.Unlock()
	if early != 0 {
		t.Logf("spans exported before Run ended: %d batches", early) // allowed, not expected
	}
	r.cancel()
	if _, err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.other) > 0 {
		t.Errorf("unexpected requests to the collector: %q", col.other)
	}
	var spanNames []string
	serviceName := ""
	for _, req := range col.traces {
		for _, rs := range req.GetResourceSpans() {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					serviceName = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					spanNames = append(spanNames, s.GetName())
				}
			}
		}
	}
	if len(spanNames) != 1 || spanNames[0] != "GET /users/{id}" {
		t.Errorf("spans received = %q, want the one of GET /users/{id}", spanNames)
	}
	if serviceName != "test" {
		t.Errorf("resource service.name = %q, want test", serviceName)
	}
	var metricNames []string
	for _, req := range col.metrics {
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					metricNames = append(metricNames, m.GetName())
				}
			}
		}
	}
	if !strings.Contains(strings.Join(metricNames, " "), "http.server.request.duration") {
		t.Errorf("metrics received = %q, want http.server.request.duration", metricNames)
	}
}

func TestEnvPrometheusExporterMeansTheServiceEndpoint(t *testing.T) {
	// autoexport would start an HTTP server of its own on
	// OTEL_EXPORTER_PROMETHEUS_HOST:PORT; the Service serves /metrics instead.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	_ = free.Close()
	setOTelEnv(t, "OTEL_METRICS_EXPORTER", "prometheus",
		"OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT", strconv.Itoa(port))
	r := start(t, userRoute)
	get(t, noKeepAlive(), r.url+"/users/1")
	if scrape(t, r.url+"/metrics")["http_server_request_duration_seconds"] == nil {
		t.Error("no request metrics at /metrics")
	}
	if c, err := net.Dial("tcp", free.Addr().String()); err == nil {
		_ = c.Close()
		t.Errorf("something listens on %s: autoexport started a second Prometheus server", free.Addr())
	}
}

// TestEnvProvidersShutDownOnFailedRun checks that Run shuts down what New
// built from the environment even when it fails before serving.
func TestEnvProvidersShutDownOnFailedRun(t *testing.T) {
	col := &otlpCollector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	setOTelEnv(t, "OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	svc, err := service.New("test", service.WithAddr("256.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err == nil {
		t.Fatal("Run on a bad address succeeded")
	}
	// goleak (TestMain) fails the package if the exporters' goroutines live on.
}
