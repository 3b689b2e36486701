package loadgen

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is what a run found.
type Report struct {
	// Requests is the number of requests of the load (the check's reads
	// are not counted), sent over Elapsed.
	Requests int64
	Elapsed  time.Duration
	// Expected counts the expected error answers by status ("402", "409",
	// "503" with Retry-After, ...).
	Expected map[string]int64
	// Failures counts the unexpected answers by kind ("500 order",
	// "transport cancel", ...); FailureExamples holds the first of each kind.
	Failures        map[string]int64
	FailureExamples map[string]string
	// Outcomes counts what the answers said: orders confirmed, rejected and
	// cancelled (each order once, however many answers named it), and
	// placements refused for short stock or left undecided (a 503, no answer).
	Outcomes map[string]int64
	// Orders counts the run's orders read back at the end, by status.
	Orders map[string]int64
	// PaymentsChecked tells whether the payments were reconciled (a
	// payments URL was given).
	PaymentsChecked bool
	// Violations holds one line per broken rule of the books.
	Violations []string
}

// UnexpectedFailures is the number of requests that failed unexpectedly.
func (r *Report) UnexpectedFailures() int64 { return sum(r.Failures) }

// OK reports whether the books balance and at most maxFailures requests
// failed unexpectedly.
func (r *Report) OK(maxFailures int64) bool {
	return len(r.Violations) == 0 && r.UnexpectedFailures() <= maxFailures
}

// String is the summary: the counts, then each failure kind's first example
// and each violation on its own line.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests %d in %.1fs (%.0f/s); unexpected failures %d",
		r.Requests, r.Elapsed.Seconds(), float64(r.Requests)/max(r.Elapsed.Seconds(), 0.001), r.UnexpectedFailures())
	writeCounts(&b, " ", r.Failures)
	fmt.Fprintf(&b, "; expected answers %d", sum(r.Expected))
	writeCounts(&b, " ", r.Expected)
	b.WriteString("\norders read back:")
	for _, k := range slices.Sorted(maps.Keys(r.Orders)) {
		fmt.Fprintf(&b, " %s %d", k, r.Orders[k])
	}
	if len(r.Orders) == 0 {
		b.WriteString(" none")
	}
	b.WriteString("\n")
	for _, k := range slices.Sorted(maps.Keys(r.FailureExamples)) {
		fmt.Fprintf(&b, "failure %s, first: %s\n", k, r.FailureExamples[k])
	}
	if !r.PaymentsChecked {
		b.WriteString("payments: not checked (no payments URL)\n")
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "VIOLATION %s\n", v)
	}
	if len(r.Violations) == 0 {
		checked := "stock, idempotency keys, pending orders"
		if r.PaymentsChecked {
			checked += ", payments"
		}
		fmt.Fprintf(&b, "books balance (%s)\n", checked)
	}
	return b.String()
}

func (g *gen) report() *Report {
	s := g.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Report{
		Requests:        s.requests,
		Elapsed:         s.stopped.Sub(g.start),
		Expected:        maps.Clone(s.expected),
		Failures:        maps.Clone(s.failures),
		FailureExamples: maps.Clone(s.examples),
		Outcomes:        maps.Clone(s.outcomes),
	}
}
