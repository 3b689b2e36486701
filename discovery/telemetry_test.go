package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/budget"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/resilience"
)

// recorder holds an SDK tracer provider that keeps every span in memory and
// an SDK meter provider read on demand, both shut down when the test ends.
type recorder struct {
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		_ = r.tp.Shutdown(context.Background())
		_ = r.mp.Shutdown(context.Background())
	})
	return r
}

// options returns the client options that send the client's telemetry here.
func (r *recorder) options(extra ...discovery.ClientOption) []discovery.ClientOption {
	return append([]discovery.ClientOption{discovery.WithTracerProvider(r.tp), discovery.WithMeterProvider(r.mp)}, extra...)
}

// clientSpans returns the ended spans of kind client, by attempt number.
func (r *recorder) clientSpans() []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range r.spans.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b tracetest.SpanStub) int {
		return int(attr(a.Attributes, discovery.AttemptKey).AsInt64() - attr(b.Attributes, discovery.AttemptKey).AsInt64())
	})
	return out
}

// collect reads the metrics.
func (r *recorder) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func attr(kvs []attribute.KeyValue, k attribute.Key) attribute.Value {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// value sums the points of the int64 counter or gauge name whose attributes
// include want, and reports whether there was one.
func value(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (int64, bool) {
	t.Helper()
	var sum int64
	found := false
	match := func(s attribute.Set) bool {
		for _, kv := range want {
			if v, ok := s.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						sum, found = sum+p.Value, true
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						sum, found = sum+p.Value, true
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						sum, found = sum+int64(p.Count), true
					}
				}
			default:
				t.Fatalf("%s: unexpected data %T", name, m.Data)
			}
		}
	}
	return sum, found
}

var users = discovery.ServiceKey.String("users")

// waitUntil polls cond until it holds, failing the test after waitFor.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", waitFor, what)
		}
		work(time.Millisecond)
	}
}

func TestAttemptsAreClientSpansUnderTheCallersSpan(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	var mu sync.Mutex
	received := map[string]string{} // instance address -> traceparent
	var failFirst atomic.Bool
	failFirst.Store(true)
	f := newFleet(t, 2, nil)
	for _, in := range f.ins {
		in.set(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			received[in.addr] = r.Header.Get("Traceparent")
			mu.Unlock()
			if failFirst.CompareAndSwap(true, false) {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			ok(w, r)
		})
	}
	c := f.client(t, rec.options(discovery.WithRetryBackoff(time.Millisecond, 2*time.Millisecond))...)

	ctx, parent := rec.tp.Tracer("test").Start(context.Background(), "caller")
	req, err := http.NewRequestWithContext(ctx, "GET", "http://users/work?page=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rec.clientSpans()); n != 1 {
		t.Errorf("%d client spans ended before the body was closed, want 1 (the 503's)", n)
	}
	_ = resp.Body.Close()
	parent.End()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 after a retry", resp.StatusCode)
	}
	if len(req.Header) != 0 {
		t.Errorf("the caller's request headers were changed: %v", req.Header)
	}

	spans := rec.clientSpans()
	if len(spans) != 2 {
		t.Fatalf("%d client spans, want 2: one per attempt", len(spans))
	}
	seen := map[string]bool{}
	for i, s := range spans {
		name := fmt.Sprintf("attempt %d", i+1)
		if s.Name != "GET" {
			t.Errorf("%s: span name %q, want GET", name, s.Name)
		}
		if s.Parent.SpanID() != parent.SpanContext().SpanID() || s.SpanContext.TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("%s: parent %v, want the caller's span %v", name, s.Parent.SpanID(), parent.SpanContext().SpanID())
		}
		host := attr(s.Attributes, "server.address").AsString()
		port := attr(s.Attributes, "server.port").AsInt64()
		addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
		seen[addr] = true
		for k, want := range map[attribute.Key]attribute.Value{
			"http.request.method":      attribute.StringValue("GET"),
			"url.full":                 attribute.StringValue("http://" + addr + "/work?page=2"),
			discovery.ServiceKey:       attribute.StringValue("users"),
			discovery.AttemptKey:       attribute.IntValue(i + 1),
			"network.protocol.version": attribute.StringValue("1.1"),
		} {
			if got := attr(s.Attributes, k); got != want {
				t.Errorf("%s: %s = %v, want %v", name, k, got.String(), want.String())
			}
		}
		mu.Lock()
		tp := received[addr]
		mu.Unlock()
		if !strings.Contains(tp, s.SpanContext.SpanID().String()) || !strings.Contains(tp, s.SpanContext.TraceID().String()) {
			t.Errorf("%s: instance %s received traceparent %q, want the attempt span's %v", name, addr, tp, s.SpanContext.SpanID())
		}
	}
	if len(seen) != 2 {
		t.Errorf("attempts went to %v, want the retry on the other instance", seen)
	}
	first, second := spans[0], spans[1]
	if first.Status.Code != codes.Error || attr(first.Attributes, "http.response.status_code").AsInt64() != 503 ||
		attr(first.Attributes, "error.type").AsString() != "503" {
		t.Errorf("attempt 1: status %v, attributes %v; want an error with status code and error.type 503", first.Status, first.Attributes)
	}
	if second.Status.Code != codes.Unset || attr(second.Attributes, "http.response.status_code").AsInt64() != 200 ||
		attr(second.Attributes, "error.type").Type() != attribute.EMPTY {
		t.Errorf("attempt 2: status %v, attributes %v; want no error, status code 200", second.Status, second.Attributes)
	}
}

func TestUnsentAttemptIsItsOwnSpan(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	f := newFleet(t, 1, ok)
	// A second instance that refuses connections: its port is closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	_ = ln.Close()
	if err := f.reg.Register(context.Background(), discovery.Instance{ID: "users-down", Service: "users", Addr: down}); err != nil {
		t.Fatal(err)
	}
	c := f.client(t, rec.options(discovery.WithBalancer(discovery.RoundRobin))...)

	// A POST without a key is not retried by policy: only because it was not
	// sent. Round robin tries the closed instance first within two requests.
	metDown := func() bool {
		return slices.ContainsFunc(rec.clientSpans(), func(s tracetest.SpanStub) bool {
			return attr(s.Attributes, "error.type").AsString() == "connection_refused"
		})
	}
	for i := 0; i < 2 && !metDown(); i++ {
		ctx, parent := rec.tp.Tracer("test").Start(context.Background(), "caller")
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://users/orders", strings.NewReader("order"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		_ = resp.Body.Close()
		parent.End()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: status %d", resp.StatusCode)
		}
	}
	var trace []tracetest.SpanStub // the client spans of the request that met the closed instance
	for _, s := range rec.clientSpans() {
		if attr(s.Attributes, "error.type").AsString() == "connection_refused" {
			for _, o := range rec.clientSpans() {
				if o.SpanContext.TraceID() == s.SpanContext.TraceID() {
					trace = append(trace, o)
				}
			}
		}
	}
	if len(trace) != 2 {
		t.Fatalf("%d client spans for the request that met the closed instance, want 2", len(trace))
	}
	refused, sent := trace[0], trace[1]
	addr := func(s tracetest.SpanStub) string {
		return net.JoinHostPort(attr(s.Attributes, "server.address").AsString(), attr(s.Attributes, "server.port").String())
	}
	if refused.Status.Code != codes.Error || attr(refused.Attributes, discovery.AttemptKey).AsInt64() != 1 || addr(refused) != down {
		t.Errorf("refused attempt: status %v, attributes %v; want an error, attempt 1, to %s", refused.Status, refused.Attributes, down)
	}
	if sent.Status.Code != codes.Unset || attr(sent.Attributes, discovery.AttemptKey).AsInt64() != 2 || addr(sent) != f.ins[0].addr {
		t.Errorf("second attempt: status %v, attributes %v; want no error, attempt 2, to %s", sent.Status, sent.Attributes, f.ins[0].addr)
	}
	rm := rec.collect(t)
	if n, _ := value(t, rm, "pier.client.retries", users, attribute.String("reason", "unsent")); n != 1 {
		t.Errorf("pier.client.retries{reason=unsent} = %d, want 1", n)
	}
}

func TestClientMetrics(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	f := newFleet(t, 3, ok)
	bad := f.ins[1]
	bad.set(status(http.StatusServiceUnavailable))
	c := f.client(t, rec.options(
		discovery.WithBalancer(discovery.RoundRobin),
		discovery.WithRetryBackoff(time.Millisecond, 2*time.Millisecond),
		discovery.WithCircuitBreaker(resilience.NewCircuitBreakerBuilder().WithFailureRateThreshold(0.5, 10, time.Minute).WithDelay(time.Minute)),
	)...)

	const requests = 30
	if failed := run(c, requests, 1, "GET", nil); failed != 0 {
		t.Fatalf("%d of %d GETs failed, want 0", failed, requests)
	}
	rm := rec.collect(t)
	failures := bad.hits.Load()
	var attempts int64
	for _, in := range f.ins {
		attempts += in.hits.Load()
	}
	for _, tt := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"pier.client.requests", []attribute.KeyValue{users, attribute.String("outcome", "success")}, requests},
		{"pier.client.requests", []attribute.KeyValue{users, attribute.String("outcome", "failure")}, 0},
		{"pier.client.retries", []attribute.KeyValue{users, attribute.String("reason", "failure")}, failures},
		{"pier.client.ejections", []attribute.KeyValue{users}, 1},
		{"pier.client.ejected", []attribute.KeyValue{users}, 1},
		{"pier.client.breaker.state", []attribute.KeyValue{users}, 0},
		{"pier.client.breaker.transitions", []attribute.KeyValue{users}, 0},
		{"http.client.request.duration", []attribute.KeyValue{users, attribute.String("server.address", "users"), attribute.Int("server.port", 80)}, attempts},
		{"http.client.request.duration", []attribute.KeyValue{users, attribute.String("error.type", "503")}, failures},
	} {
		if got, _ := value(t, rm, tt.name, tt.attrs...); got != tt.want {
			t.Errorf("%s%v = %d, want %d", tt.name, tt.attrs, got, tt.want)
		}
	}
	if failures != 5 {
		t.Errorf("the failing instance got %d attempts, want 5: ejected after 5 failures in a row", failures)
	}
	noInstanceAddresses(t, rm, f)

	// Every instance fails: the breaker opens.
	for _, in := range f.ins {
		in.set(status(http.StatusServiceUnavailable))
	}
	for i := 0; ; i++ {
		_, err := call(c, "GET", "http://users/work", nil)
		if err != nil {
			break // the open breaker's refusal
		}
		if i == 100 {
			t.Fatal("the breaker did not open within 100 failing requests")
		}
	}
	rm = rec.collect(t)
	if n, _ := value(t, rm, "pier.client.breaker.transitions", users, attribute.String("state", "open")); n != 1 {
		t.Errorf("pier.client.breaker.transitions{state=open} = %d, want 1", n)
	}
	if n, _ := value(t, rm, "pier.client.breaker.state", users); n != 2 {
		t.Errorf("pier.client.breaker.state = %d, want 2 (open)", n)
	}
	if n, _ := value(t, rm, "pier.client.requests", users, attribute.String("outcome", "failure")); n == 0 {
		t.Error("pier.client.requests{outcome=failure} = 0 after failing requests")
	}
	noInstanceAddresses(t, rm, f)
}

// noInstanceAddresses fails the test when a metric attribute names one of
// f's instances: the client's series must stay per service.
func noInstanceAddresses(t *testing.T, rm metricdata.ResourceMetrics, f *fleet) {
	t.Helper()
	check := func(name string, s attribute.Set) {
		for _, kv := range s.ToSlice() {
			for _, in := range f.ins {
				host, port, _ := net.SplitHostPort(in.addr)
				if v := kv.Value.String(); strings.Contains(v, in.addr) || kv.Key == "server.port" && v == port ||
					kv.Key == "server.address" && v == host {
					t.Errorf("%s has %s=%s: an instance's address", name, kv.Key, v)
				}
			}
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					check(m.Name, p.Attributes)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					check(m.Name, p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					check(m.Name, p.Attributes)
				}
			}
		}
	}
}

func TestRetryBudgetExhaustionIsCounted(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	const callers = 8
	var arrived atomic.Int64
	allIn := make(chan struct{})
	release := make(chan struct{})
	f := newFleet(t, 2, func(w http.ResponseWriter, r *http.Request) {
		n := arrived.Add(1)
		if n > callers { // a retry: it holds its budget permit until released
			select {
			case <-release:
			case <-r.Context().Done():
			}
			ok(w, r)
			return
		}
		if n == callers {
			close(allIn)
		}
		// Every first attempt fails at once, when all are in.
		select {
		case <-allIn:
		case <-time.After(waitFor):
		}
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	// A 20% budget of 8 executions allows the 3 retries of its minimum: the
	// other 5 are refused.
	c := f.client(t, rec.options(discovery.WithRetryBackoff(time.Millisecond, 2*time.Millisecond))...)
	var refused atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			_, err := call(c, "GET", "http://users/work", nil)
			if errors.Is(err, budget.ErrExceeded) {
				refused.Add(1)
			}
		})
	}
	waitUntil(t, "5 retries are refused", func() bool { return refused.Load() == 5 })
	close(release)
	wg.Wait()
	rm := rec.collect(t)
	for _, tt := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"pier.client.retry_budget.exhausted", []attribute.KeyValue{users}, 5},
		{"pier.client.retries", []attribute.KeyValue{users}, 3},
		{"pier.client.requests", []attribute.KeyValue{users, attribute.String("outcome", "success")}, 3},
		{"pier.client.requests", []attribute.KeyValue{users, attribute.String("outcome", "failure")}, 5},
	} {
		if got, _ := value(t, rm, tt.name, tt.attrs...); got != tt.want {
			t.Errorf("%s%v = %d, want %d", tt.name, tt.attrs, got, tt.want)
		}
	}
}

// TestRetryBudgetCountsRequestsInFlight: the budget lets a share of the
// requests in flight be retries, so requests whose first attempt is still
// out count, though that attempt runs before the retry policy does. With 20
// requests waiting on their answers, 8 that fail at once may all retry (8 of
// 36 is within 20%); counting only the 8, the budget would allow just its
// minimum of 3.
func TestRetryBudgetCountsRequestsInFlight(t *testing.T) {
	t.Parallel()
	const waiting, failing = 20, 8
	var slowIn, workIn, retriesIn atomic.Int64
	allIn := make(chan struct{})
	release := make(chan struct{})
	hold := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		ok(w, r)
	}
	f := newFleet(t, 2, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slowIn.Add(1)
			hold(w, r)
			return
		}
		n := workIn.Add(1)
		if n > failing { // a retry
			retriesIn.Add(1)
			hold(w, r)
			return
		}
		if n == failing {
			close(allIn)
		}
		select { // every first attempt fails, when all are in
		case <-allIn:
		case <-r.Context().Done():
		}
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	c := f.client(t, discovery.WithRetryBackoff(time.Millisecond, 2*time.Millisecond))
	var refused atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	for range waiting {
		wg.Go(func() { _, _ = call(c, "GET", "http://users/slow", nil) })
	}
	waitUntil(t, "the waiting requests are in", func() bool { return slowIn.Load() == waiting })
	for range failing {
		wg.Go(func() {
			if _, err := call(c, "GET", "http://users/work", nil); errors.Is(err, budget.ErrExceeded) {
				refused.Add(1)
			}
		})
	}
	waitUntil(t, "every failed request retried or was refused", func() bool {
		return retriesIn.Load()+refused.Load() == failing
	})
	if n := refused.Load(); n != 0 {
		t.Fatalf("the budget refused %d of %d retries with %d requests in flight: it did not count them", n, failing, waiting)
	}
}

func TestPropagation(t *testing.T) {
	t.Parallel()
	headers := make(chan http.Header, 1)
	f := newFleet(t, 1, func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header.Clone()
		ok(w, r)
	})
	rec := newRecorder(t)
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx, parent := rec.tp.Tracer("test").Start(baggage.ContextWithBaggage(context.Background(), bag), "caller")
	defer parent.End()
	send := func(c *http.Client) http.Header {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://users/", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return <-headers
	}

	// The global providers (no-op here: nothing sets them) and the default
	// propagator: the caller's trace and baggage go on.
	h := send(f.client(t))
	if tp := h.Get("Traceparent"); !strings.Contains(tp, parent.SpanContext().SpanID().String()) {
		t.Errorf("with no tracer, traceparent %q, want the caller's span %v", tp, parent.SpanContext().SpanID())
	}
	if b := h.Get("Baggage"); b != "tenant=acme" {
		t.Errorf("baggage %q, want tenant=acme", b)
	}

	// WithPropagator replaces the default.
	h = send(f.client(t, discovery.WithPropagator(propagation.Baggage{})))
	if tp := h.Get("Traceparent"); tp != "" {
		t.Errorf("a baggage-only propagator sent traceparent %q", tp)
	}
	if b := h.Get("Baggage"); b != "tenant=acme" {
		t.Errorf("baggage %q, want tenant=acme", b)
	}

	// A request to an address, not a service, is traced and propagated too.
	c := discovery.NewClient(f.reg, rec.options()...)
	t.Cleanup(c.CloseIdleConnections)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+f.ins[0].addr+"/direct", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	h = <-headers
	spans := rec.clientSpans()
	if len(spans) != 1 {
		t.Fatalf("%d client spans for a request to an address, want 1", len(spans))
	}
	if tp := h.Get("Traceparent"); !strings.Contains(tp, spans[0].SpanContext.SpanID().String()) {
		t.Errorf("traceparent %q, want the span %v", tp, spans[0].SpanContext.SpanID())
	}
	if got := attr(spans[0].Attributes, discovery.ServiceKey); got.Type() != attribute.EMPTY {
		t.Errorf("a request to an address has pier.service %v", got.String())
	}
}

// countingMeterProvider counts the gauge callbacks unregistered through it.
type countingMeterProvider struct {
	metric.MeterProvider
	unregistered atomic.Int64
}

func (p *countingMeterProvider) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return countingMeter{p.MeterProvider.Meter(name, opts...), p}
}

type countingMeter struct {
	metric.Meter
	p *countingMeterProvider
}

func (m countingMeter) RegisterCallback(f metric.Callback, insts ...metric.Observable) (metric.Registration, error) {
	r, err := m.Meter.RegisterCallback(f, insts...)
	return countingRegistration{r, m.p}, err
}

type countingRegistration struct {
	metric.Registration
	p *countingMeterProvider
}

func (r countingRegistration) Unregister() error {
	r.p.unregistered.Add(1)
	return r.Registration.Unregister()
}

// TestDroppedClientUnregistersItsGauges: a client has no Close, so the
// callback of its gauges must go when the client is garbage.
func TestDroppedClientUnregistersItsGauges(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	mp := &countingMeterProvider{MeterProvider: rec.mp}
	f := newFleet(t, 1, ok)
	func() {
		c := discovery.NewClient(f.reg, discovery.WithMeterProvider(mp))
		defer c.CloseIdleConnections()
		if code, err := call(c, "GET", "http://users/", nil); err != nil || code != http.StatusOK {
			t.Fatalf("GET = %d, %v", code, err)
		}
		if _, ok := value(t, rec.collect(t), "pier.client.ejected", users); !ok {
			t.Error("pier.client.ejected not reported while the client lives")
		}
	}()
	waitUntil(t, "the dropped client's gauges are unregistered", func() bool {
		runtime.GC()
		return mp.unregistered.Load() == 1
	})
	if _, ok := value(t, rec.collect(t), "pier.client.ejected", users); ok {
		t.Error("pier.client.ejected still reported for a dropped client")
	}
}
