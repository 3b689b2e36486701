package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/pier-go/pier/health"
)

// get serves one GET request to h and prints the answer's status and body.
func get(h http.Handler, target string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
}

func ExampleNew() {
	m, err := health.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	err = m.Add("db", health.CheckerFunc(func(ctx context.Context) error {
		return nil // for example db.PingContext(ctx)
	}))
	if err != nil {
		fmt.Println(err)
		return
	}

	mux := http.NewServeMux()
	mux.Handle("GET /health/live", m.LiveHandler())
	mux.Handle("GET /health/ready", m.ReadyHandler())
	mux.Handle("GET /health", m.DetailHandler())

	get(mux, "/health/ready") // a new Monitor is starting
	m.SetState(health.StateServing)
	get(mux, "/health/ready")
	m.SetState(health.StateDraining)
	get(mux, "/health/ready")
	get(mux, "/health/live") // alive all along
	// Output:
	// 503 {"title":"Service Unavailable","status":503,"detail":"service is starting","state":"starting"}
	// 200 {"status":"pass"}
	// 503 {"title":"Service Unavailable","status":503,"detail":"service is draining","state":"draining"}
	// 200 {"status":"pass"}
}

func ExampleCheckerFunc() {
	// Any func(context.Context) error is a Checker once converted.
	queueDepth := func() int { return 12_000 }
	backlog := health.CheckerFunc(func(ctx context.Context) error {
		if n := queueDepth(); n > 10_000 {
			return fmt.Errorf("queue backlog %d over 10000", n)
		}
		return nil
	})

	m, err := health.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Add("queue", backlog); err != nil {
		fmt.Println(err)
		return
	}
	m.SetState(health.StateServing)
	get(m.ReadyHandler(), "/health/ready")                         // public: the failing check's name
	get(m.ReadyHandler(health.WithCheckErrors()), "/health/ready") // private: its error too
	// Output:
	// 503 {"title":"Service Unavailable","status":503,"detail":"critical check failing: queue","state":"serving"}
	// 503 {"title":"Service Unavailable","status":503,"detail":"critical check failing: queue: queue backlog 12000 over 10000","state":"serving"}
}

func ExampleNonCritical() {
	m, err := health.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	db := health.CheckerFunc(func(ctx context.Context) error { return nil })
	cache := health.CheckerFunc(func(ctx context.Context) error { return errors.New("connection refused") })
	_ = m.Add("db", db)
	// The service can run without its cache: a failure warns but keeps it ready.
	_ = m.Add("cache", cache, health.NonCritical())
	m.SetState(health.StateServing)

	get(m.ReadyHandler(), "/health/ready")
	// Output:
	// 200 {"status":"warn"}
}

func ExampleTimeout() {
	m, err := health.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	slow := health.CheckerFunc(func(ctx context.Context) error {
		<-ctx.Done() // a dependency that does not answer
		return ctx.Err()
	})
	_ = m.Add("search", slow, health.Timeout(10*time.Millisecond), health.NonCritical())
	m.SetState(health.StateServing)

	rep := m.Report(context.Background())
	r := rep.Checks[0]
	fmt.Println(rep.Status, rep.Ready)
	fmt.Println(r.Name, r.Critical, r.Status, r.Error)
	// Output:
	// warn true
	// search false warn timed out after 10ms
}

func ExampleMonitor_DetailHandler() {
	m, err := health.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = m.Add("db", health.CheckerFunc(func(ctx context.Context) error { return nil }))
	_ = m.Add("payments", health.CheckerFunc(func(ctx context.Context) error {
		return errors.New("503 from payments")
	}))
	m.SetState(health.StateServing)

	// Public: each check's name and status.
	get(m.DetailHandler(), "/health")

	// Private (an admin listener): the checks in full.
	rec := httptest.NewRecorder()
	m.DetailHandler(health.WithCheckErrors()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	var rep health.Report
	if err := json.NewDecoder(rec.Body).Decode(&rep); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Println(rep.Status, rep.State, rep.Ready)
	for _, r := range rep.Checks { // durations vary from run to run; left out here
		fmt.Printf("%s critical=%v %s %q\n", r.Name, r.Critical, r.Status, r.Error)
	}
	// Output:
	// 503 {"status":"fail","state":"serving","ready":false,"checks":[{"name":"db","status":"pass"},{"name":"payments","status":"fail"}]}
	// 503 application/json
	// fail serving false
	// db critical=true pass ""
	// payments critical=true fail "503 from payments"
}
