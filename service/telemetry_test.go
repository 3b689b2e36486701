package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/resilience"
	"github.com/pier-go/pier/service"
)

// tracing returns a tracer provider that exports every span, as it ends, to
// the returned exporter.
func tracing(tb testing.TB) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	tb.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

// spansNamed returns the ended spans called name, waiting for at least n.
func spansNamed(tb testing.TB, exp *tracetest.InMemoryExporter, name string, n int) []tracetest.SpanStub {
	tb.Helper()
	var out []tracetest.SpanStub
	waitUntil(tb, fmt.Sprintf("%d span(s) named %q end", n, name), func() bool {
		out = out[:0]
		for _, s := range exp.GetSpans() {
			if s.Name == name {
				out = append(out, s)
			}
		}
		return len(out) >= n
	})
	return out
}

func attrOf(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func userRoute(s *service.Service) {
	s.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
	})
}

func TestSpanNamedByRoute(t *testing.T) {
	t.Parallel()
	tp, exp := tracing(t)
	r := start(t, userRoute, service.WithTracerProvider(tp))
	if code, _, body := get(t, noKeepAlive(), r.url+"/users/42"); code != http.StatusOK {
		t.Fatalf("GET /users/42 = %d %s", code, body)
	}
	s := spansNamed(t, exp, "GET /users/{id}", 1)[0]
	if s.SpanKind != trace.SpanKindServer {
		t.Errorf("kind = %v, want server", s.SpanKind)
	}
	want := map[attribute.Key]string{
		"http.route":                "/users/{id}",
		"http.request.method":       "GET",
		"http.response.status_code": "200",
		"url.path":                  "/users/42",
		"url.scheme":                "http",
		"network.protocol.version":  "1.1",
	}
	for k, v := range want {
		if got, ok := attrOf(s, k); !ok || got.String() != v {
			t.Errorf("attribute %s = %q (set: %v), want %q", k, got.String(), ok, v)
		}
	}
	if s.Parent.IsValid() {
		t.Errorf("span has parent %v, want a root span", s.Parent)
	}
}

func TestSpanContinuesIncomingTrace(t *testing.T) {
	t.Parallel()
	tp, exp := tracing(t)
	r := start(t, userRoute, service.WithTracerProvider(tp))
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("GET", r.url+"/users/42", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := noKeepAlive().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	s := spansNamed(t, exp, "GET /users/{id}", 1)[0]
	if got := s.SpanContext.TraceID().String(); got != traceID {
		t.Errorf("trace ID = %s, want the caller's %s", got, traceID)
	}
	if !s.Parent.IsRemote() || s.Parent.SpanID().String() != parentID {
		t.Errorf("parent = %v (remote %v), want the caller's span %s", s.Parent.SpanID(), s.Parent.IsRemote(), parentID)
	}
}

func TestProbesAndScrapesMakeNoSpans(t *testing.T) {
	t.Parallel()
	tp, exp := tracing(t)
	r := start(t, userRoute, service.WithTracerProvider(tp))
	for _, path := range []string{service.LivePath, service.ReadyPath, service.HealthPath, service.DefaultMetricsPath} {
		if code, _, _ := get(t, noKeepAlive(), r.url+path); code != http.StatusOK {
			t.Fatalf("GET %s = %d", path, code)
		}
	}
	get(t, noKeepAlive(), r.url+"/users/1") // a span to wait for: the probes' would have ended first
	spansNamed(t, exp, "GET /users/{id}", 1)
	if spans := exp.GetSpans(); len(spans) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name)
		}
		t.Fatalf("spans = %q, want only the one of /users/1", names)
	}
	mf := scrape(t, r.url+service.DefaultMetricsPath)["http_server_request_duration_seconds"]
	for _, m := range mf.GetMetric() {
		if route := label(m, "http_route"); route != "/users/{id}" {
			t.Errorf("http.server.request.duration has a series for route %q: probes must not be measured", route)
		}
	}
}

func TestUnmatchedRequestSpanHasNoPath(t *testing.T) {
	t.Parallel()
	tp, exp := tracing(t)
	r := start(t, userRoute, service.WithTracerProvider(tp))
	if code, _, _ := get(t, noKeepAlive(), r.url+"/no/such/thing"); code != http.StatusNotFound {
		t.Fatalf("GET /no/such/thing = %d, want 404", code)
	}
	s := spansNamed(t, exp, "GET", 1)[0]
	if _, ok := attrOf(s, "http.route"); ok {
		t.Errorf("404 span has http.route")
	}
	req, _ := http.NewRequest("BREW", r.url+"/pot/"+strings.Repeat("x", 10), nil)
	resp, err := noKeepAlive().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	s = spansNamed(t, exp, "HTTP", 1)[0] // a method of the client's invention names nothing either
	if got, _ := attrOf(s, "http.request.method"); got.AsString() != "_OTHER" {
		t.Errorf("http.request.method = %q, want _OTHER", got.AsString())
	}
	for _, s := range exp.GetSpans() {
		if strings.Contains(s.Name, "/") {
			t.Errorf("span named %q: unmatched requests must not be named by their path", s.Name)
		}
	}
}

// hidingMiddleware replaces the request, as most middleware does, so the
// pattern ServeMux sets is not seen outside it, and wraps the writer.
func hidingMiddleware(next http.Handler) http.Handler {
	type key struct{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(unwrapper{w}, r.WithContext(context.WithValue(r.Context(), key{}, "v")))
	})
}

type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func TestRouteSurvivesMiddlewareThatReplacesTheRequest(t *testing.T) {
	t.Parallel()
	tp, exp := tracing(t)
	r := start(t, userRoute, service.WithTracerProvider(tp), service.WithMiddleware(hidingMiddleware))
	get(t, noKeepAlive(), r.url+"/users/7")
	s := spansNamed(t, exp, "GET /users/{id}", 1)[0]
	if got, _ := attrOf(s, "http.route"); got.AsString() != "/users/{id}" {
		t.Errorf("http.route = %q", got.AsString())
	}
	mf := scrape(t, r.url+service.DefaultMetricsPath)["http_server_request_duration_seconds"]
	if len(series(mf, map[string]string{"http_route": "/users/{id}"})) != 1 {
		t.Errorf("no http.server.request.duration series for the route:\n%v", mf)
	}
}

func TestLogsCarryTraceAndRequestIDs(t *testing.T) {
	t.Parallel()
	tp, exp := tracing(t)
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
			s.Logger().InfoContext(r.Context(), "loading user", "user", r.PathValue("id"))
		})
	}, service.WithTracerProvider(tp))
	_, h, _ := get(t, noKeepAlive(), r.url+"/users/42")
	span := spansNamed(t, exp, "GET /users/{id}", 1)[0]
	want := map[string]any{
		"trace_id":   span.SpanContext.TraceID().String(),
		"span_id":    span.SpanContext.SpanID().String(),
		"request_id": h.Get(service.RequestIDHeader),
	}
	var access, handler map[string]any
	waitUntil(t, "the access log line is written", func() bool {
		lines := r.logs.find(t, "request", "GET /users/{id}")
		if len(lines) == 0 {
			return false
		}
		access = lines[0]
		return true
	})
	if lines := r.logs.find(t, "loading user", ""); len(lines) == 1 {
		handler = lines[0]
	} else {
		t.Fatalf("handler's log lines = %v", lines)
	}
	for name, line := range map[string]map[string]any{"access log": access, "handler log": handler} {
		for k, v := range want {
			if line[k] != v {
				t.Errorf("%s %s = %v, want %v (line %v)", name, k, line[k], v, line)
			}
		}
	}
}

func TestPanicProblemCarriesTraceID(t *testing.T) {
	t.Parallel()
	tp, exp := tracing(t)
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	}, service.WithTracerProvider(tp))
	code, h, body := get(t, noKeepAlive(), r.url+"/panic")
	if code != http.StatusInternalServerError {
		t.Fatalf("GET /panic = %d", code)
	}
	p := problemOf(t, h, body)
	span := spansNamed(t, exp, "GET /panic", 1)[0]
	if p.TraceID == "" || p.TraceID != span.SpanContext.TraceID().String() {
		t.Errorf("problem trace_id = %q, want the span's %s", p.TraceID, span.SpanContext.TraceID())
	}
	if span.Status.Code != codes.Error {
		t.Errorf("span status = %v, want Error", span.Status)
	}
	if got, _ := attrOf(span, "http.response.status_code"); got.AsInt64() != 500 {
		t.Errorf("http.response.status_code = %v, want 500", got.String())
	}
	logged := r.logs.find(t, "panic serving request", "")
	if len(logged) != 1 || logged[0]["trace_id"] != p.TraceID || logged[0]["request_id"] != p.RequestID {
		t.Errorf("panic log = %v, want trace_id %s and request_id %s", logged, p.TraceID, p.RequestID)
	}
}

func TestServerErrorMarksSpanAndMetric(t *testing.T) {
	t.Parallel()
	tp, exp := tracing(t)
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /fail", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
		s.HandleFunc("GET /missing", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	}, service.WithTracerProvider(tp))
	get(t, noKeepAlive(), r.url+"/fail")
	get(t, noKeepAlive(), r.url+"/missing")
	if s := spansNamed(t, exp, "GET /fail", 1)[0]; s.Status.Code != codes.Error {
		t.Errorf("502 span status = %v, want Error", s.Status)
	}
	if s := spansNamed(t, exp, "GET /missing", 1)[0]; s.Status.Code != codes.Unset {
		t.Errorf("404 span status = %v, want Unset: a client's error is not the server's", s.Status)
	}
	mf := scrape(t, r.url+service.DefaultMetricsPath)["http_server_request_duration_seconds"]
	if len(series(mf, map[string]string{"http_route": "/fail", "http_response_status_code": "502", "error_type": "502"})) != 1 {
		t.Errorf("no series for the 502 with error.type:\n%v", mf)
	}
}

// scrape fetches Prometheus text from url and parses it.
func scrape(tb testing.TB, url string) map[string]*dto.MetricFamily {
	tb.Helper()
	code, h, body := get(tb, noKeepAlive(), url)
	if code != http.StatusOK {
		tb.Fatalf("GET %s = %d %s", url, code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Fatalf("Content-Type = %q, want Prometheus text", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		tb.Fatalf("parse %s: %v\n%s", url, err, body)
	}
	return families
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// series returns the metrics of mf that carry every label in want.
func series(mf *dto.MetricFamily, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range mf.GetMetric() {
		ok := true
		for k, v := range want {
			if label(m, k) != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func TestMetricsOnMainListener(t *testing.T) {
	t.Parallel()
	r := start(t, userRoute, service.WithVersion("1.2.3"))
	get(t, noKeepAlive(), r.url+"/users/42")
	families := scrape(t, r.url+"/metrics")
	mf := families["http_server_request_duration_seconds"]
	if mf.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("http_server_request_duration_seconds type = %v, want histogram", mf.GetType())
	}
	got := series(mf, map[string]string{
		"http_route": "/users/{id}", "http_request_method": "GET", "http_response_status_code": "200", "url_scheme": "http",
	})
	if len(got) != 1 || got[0].GetHistogram().GetSampleCount() != 1 {
		t.Fatalf("series for GET /users/{id} = %v, want one with one sample; family:\n%v", got, mf)
	}
	target := families["target_info"].GetMetric()
	if len(target) != 1 || label(target[0], "service_name") != "test" || label(target[0], "service_version") != "1.2.3" {
		t.Errorf("target_info = %v, want service_name test and service_version 1.2.3", target)
	}
	if families["go_goroutines"] == nil {
		t.Errorf("no Go runtime metrics")
	}
	// Scrapes are logged at Debug, like the probes.
	for _, l := range r.logs.find(t, "request", "GET /metrics") {
		if l["level"] != "DEBUG" {
			t.Errorf("scrape logged at %v, want DEBUG", l["level"])
		}
	}
}

func TestMetricsPathOptions(t *testing.T) {
	t.Parallel()
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		r := start(t, userRoute, service.WithoutMetricsEndpoint())
		if code, _, _ := get(t, noKeepAlive(), r.url+"/metrics"); code != http.StatusNotFound {
			t.Fatalf("GET /metrics = %d, want 404", code)
		}
	})
	t.Run("moved", func(t *testing.T) {
		t.Parallel()
		r := start(t, userRoute, service.WithMetricsPath("/internal/metrics"))
		get(t, noKeepAlive(), r.url+"/users/1")
		if scrape(t, r.url+"/internal/metrics")["http_server_request_duration_seconds"] == nil {
			t.Fatal("no request metrics at the moved path")
		}
	})
}

func TestNewRejectsConflictingTelemetryOptions(t *testing.T) {
	t.Parallel()
	tests := map[string][]service.Option{
		"pprof without admin address":  {service.WithPprof()},
		"metrics path without slash":   {service.WithMetricsPath("metrics")},
		"meter provider with its path": {service.WithMeterProvider(metricnoop.NewMeterProvider()), service.WithMetricsPath("/metrics")},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := service.New("test", opts...); err == nil {
				t.Fatal("New succeeded, want an error")
			}
		})
	}
	// A meter provider of the user's turns the endpoint off without fuss,
	// and WithMetricsPath("") keeps the default, which then is no path.
	if _, err := service.New("test", service.WithMeterProvider(metricnoop.NewMeterProvider()), service.WithoutMetricsEndpoint()); err != nil {
		t.Fatal(err)
	}
	if _, err := service.New("test", service.WithMeterProvider(metricnoop.NewMeterProvider()), service.WithMetricsPath("")); err != nil {
		t.Fatalf("WithMetricsPath(\"\") beside WithMeterProvider: %v", err)
	}
}

func TestMeterProviderOfTheUserTurnsMetricsEndpointOff(t *testing.T) {
	t.Parallel()
	r := start(t, userRoute, service.WithMeterProvider(metricnoop.NewMeterProvider()))
	if code, _, _ := get(t, noKeepAlive(), r.url+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("GET /metrics = %d, want 404", code)
	}
}

func TestAdminAddr(t *testing.T) {
	t.Parallel()
	t.Run("metrics move there", func(t *testing.T) {
		t.Parallel()
		r := start(t, userRoute, service.WithAdminAddr("127.0.0.1:0"))
		admin := "http://" + r.svc.AdminAddr().String()
		get(t, noKeepAlive(), r.url+"/users/1")
		if code, _, _ := get(t, noKeepAlive(), r.url+"/metrics"); code != http.StatusNotFound {
			t.Errorf("main listener GET /metrics = %d, want 404", code)
		}
		if scrape(t, admin+"/metrics")["http_server_request_duration_seconds"] == nil {
			t.Errorf("admin /metrics has no request metrics")
		}
		if code, _, _ := get(t, noKeepAlive(), admin+"/debug/pprof/"); code != http.StatusNotFound {
			t.Errorf("admin GET /debug/pprof/ without WithPprof = %d, want 404", code)
		}
	})
	t.Run("pprof", func(t *testing.T) {
		t.Parallel()
		r := start(t, userRoute, service.WithAdminAddr("127.0.0.1:0"), service.WithPprof())
		admin := "http://" + r.svc.AdminAddr().String()
		for path, want := range map[string]string{
			"/debug/pprof/":                  "goroutine",
			"/debug/pprof/goroutine?debug=1": "goroutine profile",
			"/debug/pprof/cmdline":           "",
		} {
			code, _, body := get(t, noKeepAlive(), admin+path)
			if code != http.StatusOK || !strings.Contains(body, want) {
				t.Errorf("admin GET %s = %d, want 200 with %q; body %.200s", path, code, want, body)
			}
		}
		if code, _, _ := get(t, noKeepAlive(), admin+"/debug/pprof/nonesuch"); code != http.StatusNotFound {
			t.Errorf("unknown profile = %d, want 404", code)
		}
		if code, _, _ := get(t, noKeepAlive(), r.url+"/debug/pprof/"); code != http.StatusNotFound {
			t.Errorf("main listener GET /debug/pprof/ = %d, want 404", code)
		}
	})
	t.Run("none before Run", func(t *testing.T) {
		t.Parallel()
		svc, err := service.New("test", service.WithAdminAddr("127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
		if svc.AdminAddr() != nil {
			t.Errorf("AdminAddr before Run = %v, want nil", svc.AdminAddr())
		}
	})
}

func TestAdminAddrInUseFailsAtOnce(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := false
	svc, err := service.New("test", service.WithListener(ln), service.WithAdminAddr(taken.Addr().String()),
		service.WithLogger(slog.New(slog.DiscardHandler)),
		service.WithOnStart(func(context.Context) error { started = true; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "admin") {
		t.Fatalf("Run = %v, want an error about the admin listener", err)
	}
	if started {
		t.Error("OnStart ran although the admin address was taken")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the main listener is still open")
	}
}

func TestLoadSheddingIsCountedAndSparesProbes(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	r := start(t, func(s *service.Service) {
		s.HandleFunc("GET /slow", func(http.ResponseWriter, *http.Request) {
			entered <- struct{}{}
			<-release
		})
	}, service.WithLoadShedding(resilience.WithShedLimiter(adaptivelimiter.NewBuilder[*http.Response]().WithLimits(1, 1, 1).Build())))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // holds the only permit
		defer wg.Done()
		resp, err := noKeepAlive().Get(r.url + "/slow")
		if err == nil {
			drain(resp)
		}
	}()
	<-entered
	code, h, body := get(t, noKeepAlive(), r.url+"/slow")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("request over the limit = %d (Retry-After %q) %s, want 503", code, h.Get("Retry-After"), body)
	}
	if code, _, _ := get(t, noKeepAlive(), r.url+service.LivePath); code != http.StatusOK {
		t.Errorf("liveness while saturated = %d, want 200: probes are never shed", code)
	}
	shed := scrape(t, r.url+"/metrics")["pier_server_requests_shed_total"]
	if m := shed.GetMetric(); len(m) != 1 || m[0].GetCounter().GetValue() != 1 {
		t.Errorf("pier_server_requests_shed_total = %v, want 1", shed)
	}
	close(release)
	wg.Wait()
	shedLogged := false
	for _, l := range r.logs.find(t, "request", "") {
		shedLogged = shedLogged || l["path"] == "/slow" && l["status"] == 503.0
	}
	if !shedLogged {
		t.Error("the shed request's 503 is not in the access log")
	}
}

func TestBadMetricsPathOnAdminFailsNew(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/metrics/{x", "/debug/pprof/"} {
		if _, err := service.New("test", service.WithAdminAddr("127.0.0.1:0"), service.WithPprof(), service.WithMetricsPath(path)); err == nil {
			t.Errorf("WithMetricsPath(%q) on the admin listener: New succeeded, want an error", path)
		}
	}
}
