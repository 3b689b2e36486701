// Package service runs an HTTP microservice: a [net/http.ServeMux] inside a
// production middleware stack, health endpoints, structured logs, traces and
// metrics, and a graceful lifecycle.
//
//	svc, err := service.New("users", service.WithHealthCheck("db", health.CheckerFunc(db.PingContext)))
//	if err != nil {
//		return err
//	}
//	svc.HandleFunc("GET /users/{id}", getUser)
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	return svc.Run(ctx)
//
// # Lifecycle
//
// [Service.Run] binds the listener (failing at once on a port in use), runs the
// OnStart hooks in order and serves; readiness is true from then on while every
// critical check passes. When its context ends it turns unready and turns
// keep-alives off, keeps serving for the drain delay so that load balancers move
// away (deregistering meanwhile), shuts the server down within a timeout while
// in-flight requests finish, and runs the OnStop hooks in reverse within a stop
// timeout: Run returns within the sum of the configured times. See
// [WithShutdown] and [WithStopTimeout].
//
// # Middleware
//
// Every route gets, outermost first: [Recover], [RequestID], the server span
// and HTTP metrics (see Telemetry), [AccessLog], load shedding when
// [WithLoadShedding] asks for it, [Timeout] and [BodyLimit], then the
// middleware given to [WithMiddleware]. Each but the span is exported for use
// around any http.Handler, as is [NewContextHandler]; package
// [github.com/pier-go/pier/idempotency] adds middleware that makes retried
// POSTs run once per key. Errors the stack writes are RFC
// 9457 problem documents ([problem.Problem]) that carry the request and trace IDs.
//
// # Health
//
// Every Service serves GET /health/live, GET /health/ready and GET /health from a
// [health.Monitor]: see [WithHealthCheck] and [Service.Health]. On the public
// listener they name each check and its status, never its error, which can name
// internal hosts; the admin listener ([WithAdminAddr]) serves the full report.
//
// # Calling other services
//
// [Service.Client] calls other services by name, http://users/users/42,
// through the Service's registry, with balancing, retries within a budget,
// circuit breaking and outlier ejection (see [discovery.NewClient]). The
// deadline of the context passed to it travels downstream, and a Service adopts
// a caller's smaller deadline.
//
// # Telemetry
//
// Every request but the health probes and metrics scrapes gets a server span,
// named by the route that matched ("GET /users/{id}", or "GET" alone when none
// did), child of the caller's span when the request carries W3C trace context
// (traceparent, and baggage), with the HTTP semantic conventions' attributes
// (http.route among them). Its duration is recorded in the semantic
// conventions' http.server.request.duration histogram (Prometheus:
// http_server_request_duration_seconds) by http.request.method, http.route,
// http.response.status_code, url.scheme and network.protocol.version. With
// [WithLoadShedding], shed requests are counted in pier.server.requests.shed.
//
// Where spans and metrics go:
//
//   - Traces go to the provider given to [WithTracerProvider]; without one, to
//     an SDK provider the Service builds when the OTEL_* environment variables
//     configure a traces exporter (OTEL_TRACES_EXPORTER other than "none", or
//     an OTLP endpoint in OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), with a batching processor, the
//     sampler of OTEL_TRACES_SAMPLER and a resource naming the service and its
//     version; otherwise to otel.GetTracerProvider(), which records nothing
//     unless the program set a global provider.
//   - Metrics go to the provider given to [WithMeterProvider]; without one, to
//     a provider the Service builds for itself, read by a Prometheus exporter
//     with a registry of its own, served at /metrics ([WithMetricsPath],
//     [WithAdminAddr]), and by the exporter the OTEL_* variables configure, if
//     any (OTEL_METRICS_EXPORTER=prometheus means the Service's endpoint).
//   - Trace context is read from requests, and written by [Service.Client], by
//     the propagator given to [WithPropagator], W3C Trace Context and Baggage
//     by default.
//
// [Service.Client] traces and measures its calls with the same providers. Run
// flushes and shuts down the providers the Service built, last thing before it
// returns. The Service never sets OpenTelemetry's global providers or
// propagator.
//
// The Service's logger is wrapped with [NewContextHandler], so its access log
// and every line a handler logs with the request's context (logger.InfoContext(
// r.Context(), ...)) carry trace_id, span_id and request_id.
//
// [WithAdminAddr] moves /metrics to a second listener, kept off the public
// port, where [WithPprof] serves the runtime profiles under /debug/pprof/.
//
// # Handlers
//
// [DecodeJSON] reads a request body strictly and answers 400, 408, 413 or 415 with a
// problem that says what is wrong; [WriteJSON] writes answers and [problem.Write] errors.
// [NewLogger] builds the logger a Service uses by default.
//
// Nothing in this package touches global state: it never calls slog.SetDefault
// or otel.SetTracerProvider, never registers on http.DefaultServeMux or
// prometheus.DefaultRegisterer, installs no signal handlers and starts no
// goroutines outside Run, but for the export goroutines of the SDK providers
// that New builds when OTEL_* variables ask for exporters.
package service
