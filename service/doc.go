// Package service runs an HTTP microservice: a [net/http.ServeMux] inside a
// production middleware stack, health endpoints, structured logging and a
// graceful lifecycle.
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
// away, shuts the server down within a timeout while in-flight requests finish,
// and runs the OnStop hooks in reverse. See [WithShutdown] and [Hook].
//
// # Middleware
//
// Every route gets, outermost first: [Recover], [RequestID], [AccessLog],
// [Timeout] and [BodyLimit], then the middleware given to [WithMiddleware]. Each
// is exported for use around any http.Handler, as are [IdempotencyKeys], which
// makes retried POSTs run once per key, and resilience.Shed for load shedding. Errors the stack writes are RFC
// 9457 problem documents ([Problem]).
//
// # Health
//
// Every Service serves GET /health/live, GET /health/ready and GET /health from a
// [health.Monitor]: see [WithHealthCheck] and [Service.Health].
//
// # Calling other services
//
// [Service.Client] calls other services by name, http://users/users/42,
// through the Service's registry, with balancing, retries within a budget,
// circuit breaking and outlier ejection (see [discovery.NewClient]). The
// deadline of the context passed to it travels downstream, and a Service adopts
// a caller's smaller deadline.
//
// # Handlers
//
// [DecodeJSON] reads a request body strictly and answers 400, 413 or 415 with a
// problem that says what is wrong; [WriteJSON] and [WriteProblem] write answers.
// [NewLogger] builds the logger a Service uses by default.
//
// Nothing in this package touches global state: it never calls slog.SetDefault,
// installs signal handlers or starts goroutines outside Run.
package service
