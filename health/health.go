package health

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// DefaultTimeout is how long a check may run before it is reported failed, unless
// [Timeout] sets another bound.
const DefaultTimeout = time.Second

// DefaultCacheTTL is how long a check's result is reused before the check runs
// again, unless [WithCacheTTL] sets another duration.
const DefaultCacheTTL = time.Second

// Checker checks one dependency of a service: a database, a queue, a downstream
// service. Check returns nil when the dependency is usable. It should return
// promptly when ctx ends; one that does not is cut off at its timeout anyway (see
// [Timeout]). Check may be called from several goroutines over time, though never
// concurrently for the same [Monitor] check.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckerFunc adapts an ordinary function to a [Checker]. It is safe for concurrent
// use when the function is.
type CheckerFunc func(ctx context.Context) error

// Check calls f(ctx).
func (f CheckerFunc) Check(ctx context.Context) error { return f(ctx) }

// State is where a service is in its lifecycle. The zero value is [StateStarting].
// A State is a plain value, safe to copy and compare.
type State int32

// The lifecycle states, in the order a service moves through them.
const (
	// StateStarting is the state of a new Monitor: the service is not yet serving,
	// so it is not ready.
	StateStarting State = iota
	// StateServing means the service serves requests: it is ready when its critical
	// checks pass.
	StateServing
	// StateDraining means the service is stopping: it is not ready, so no new
	// traffic is routed to it, while in-flight requests finish.
	StateDraining
)

// String returns "starting", "serving" or "draining", or "State(n)" for any other
// value.
func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateServing:
		return "serving"
	case StateDraining:
		return "draining"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText returns the [State.String] form, so a State is a JSON string. It
// never fails.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses "starting", "serving" or "draining".
func (s *State) UnmarshalText(text []byte) error {
	switch string(text) {
	case "starting":
		*s = StateStarting
	case "serving":
		*s = StateServing
	case "draining":
		*s = StateDraining
	default:
		return fmt.Errorf("health: unknown state %q", text)
	}
	return nil
}

// Status is the outcome of a check or of a whole [Report]: [StatusPass],
// [StatusWarn] or [StatusFail]. The zero value "" means no outcome. A Status is a
// plain string value, safe to copy and compare.
type Status string

// The outcomes, from best to worst.
const (
	// StatusPass: the check passed; for a report, the instance is ready and every
	// check passed.
	StatusPass Status = "pass"
	// StatusWarn: a non-critical check failed; for a report, the instance is
	// ready but at least one non-critical check failed.
	StatusWarn Status = "warn"
	// StatusFail: a critical check failed; for a report, the instance is not ready.
	StatusFail Status = "fail"
)

// Report is the state of a [Monitor] and the results of its checks, as returned by
// [Monitor.Report] and served in full by [Monitor.DetailHandler] with
// [WithCheckErrors] (without it, each check shows its name and status alone). It is a plain value that
// no one else holds, so the caller may keep and change it. Its JSON form is
//
//	{"status":"warn","state":"serving","ready":true,"checks":[
//	  {"name":"db","critical":true,"status":"pass","duration_ms":1.204,"checked_at":"2026-11-02T10:04:05.123Z"},
//	  {"name":"cache","critical":false,"status":"warn","duration_ms":50.117,"error":"timed out after 50ms","checked_at":"..."}]}
type Report struct {
	// Status is the overall verdict. It is [StatusFail] whenever Ready is false,
	// including when every check passes but State is not [StateServing];
	// otherwise [StatusWarn] when a non-critical check failed and [StatusPass]
	// when none did.
	Status Status `json:"status"`
	// State is the service's lifecycle state when the checks finished.
	State State `json:"state"`
	// Ready reports whether the instance should receive traffic: State is
	// [StateServing] and every critical check passed.
	Ready bool `json:"ready"`
	// Checks holds one result per check, in the order the checks were added. It is
	// never nil, so its JSON form is [] when there are no checks.
	Checks []Result `json:"checks"`
}

// Result is the outcome of one check, a plain value safe to copy. Its JSON keys are name, critical, status,
// duration_ms (a number of milliseconds with microsecond precision), error
// (left out when the check passed) and checked_at (RFC 3339).
type Result struct {
	// Name is the name the check was added under.
	Name string
	// Critical reports whether a failure of this check makes the instance unready.
	Critical bool
	// Status is [StatusPass] when the check passed, otherwise [StatusFail] for a
	// critical check and [StatusWarn] for a non-critical one.
	Status Status
	// Duration is how long the check ran (for a check cut off at its timeout, about
	// the timeout). It is 0 when no run took place, as when a previous run is
	// still stuck.
	Duration time.Duration
	// Error is the check's error message, "" when it passed.
	Error string
	// CheckedAt is when the result was produced. A cached result keeps the time of
	// the run that produced it.
	CheckedAt time.Time
}

type resultJSON struct {
	Name       string    `json:"name"`
	Critical   bool      `json:"critical"`
	Status     Status    `json:"status"`
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	CheckedAt  time.Time `json:"checked_at,omitzero"`
}

// MarshalJSON writes r with snake_case keys and the duration in milliseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultJSON{
		Name:       r.Name,
		Critical:   r.Critical,
		Status:     r.Status,
		DurationMS: float64(r.Duration.Microseconds()) / 1e3,
		Error:      r.Error,
		CheckedAt:  r.CheckedAt,
	})
}

// UnmarshalJSON reads the form [Result.MarshalJSON] writes, so clients can decode
// a [Report].
func (r *Result) UnmarshalJSON(data []byte) error {
	var j resultJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*r = Result{
		Name:      j.Name,
		Critical:  j.Critical,
		Status:    j.Status,
		Duration:  time.Duration(math.Round(j.DurationMS * float64(time.Millisecond))),
		Error:     j.Error,
		CheckedAt: j.CheckedAt,
	}
	return nil
}
