package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// req is one request of the mix.
type req struct {
	op     string // what the mix meant, for the counts: "order", "login", ...
	method string
	url    string
	token  string
	key    string // Idempotency-Key
	body   any
	// expect lists the error statuses the mix provokes on purpose (or that
	// the shop may rightly answer, such as 409 for an order when stock ran
	// out): they count as expected answers, not failures.
	expect []int
	// retryAfterOK makes a 503 with Retry-After an expected answer (the
	// saga's "undecided, nothing held, try again").
	retryAfterOK bool
}

// answer is what came back.
type answer struct {
	status  int
	header  http.Header
	problem map[string]any // an error answer's problem document
	err     error          // transport or decoding error
	// interrupted: the run's context ended; neither a failure nor an answer.
	interrupted bool
}

func (a answer) describe() string {
	switch {
	case a.err != nil:
		return a.err.Error()
	case a.problem != nil:
		return fmt.Sprintf("%d %v", a.status, a.problem["detail"])
	}
	return strconv.Itoa(a.status)
}

func (a answer) str(k string) string { s, _ := a.problem[k].(string); return s }

// send sends r and decodes a 2xx JSON answer into out (when not nil), then
// counts the outcome.
func (g *gen) send(ctx context.Context, r req, out any) answer {
	a := g.roundTrip(ctx, r, out)
	g.stats.count(r, a)
	return a
}

func (g *gen) roundTrip(parent context.Context, r req, out any) answer {
	ctx, cancel := context.WithTimeout(parent, g.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return answer{err: err}
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return answer{err: err}
	}
	if r.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.key != "" {
		hr.Header.Set("Idempotency-Key", r.key)
	}
	resp, err := g.client.Do(hr)
	if err != nil {
		// The run being stopped is no failure; a request timing out is.
		return answer{err: err, interrupted: parent.Err() != nil}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		a.err = fmt.Errorf("%s %s: reading the answer: %w", r.method, r.url, err)
		return a
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				a.err = fmt.Errorf("%s %s: decoding the answer: %w", r.method, r.url, err)
			}
		}
		return a
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		a.err = fmt.Errorf("%s %s: %d answered with Content-Type %q, not a problem", r.method, r.url, resp.StatusCode, resp.Header.Get("Content-Type"))
		return a
	}
	_ = json.Unmarshal(data, &a.problem)
	return a
}

// Outcome classes.
const (
	classOK       = "ok"
	classExpected = "expected"
	classFailure  = "failure"
)

// classify sorts an answer: ok (2xx), an expected business answer, or a
// failure. The second result names it for the counts.
func classify(r req, a answer) (class, kind string) {
	switch {
	case a.interrupted:
		return "", ""
	case a.err != nil && a.status == 0:
		return classFailure, "transport " + r.op
	case a.err != nil:
		return classFailure, fmt.Sprintf("%d %s (bad answer)", a.status, r.op)
	case a.status >= 200 && a.status < 300:
		return classOK, ""
	case slices.Contains(r.expect, a.status):
		return classExpected, strconv.Itoa(a.status)
	case a.status == http.StatusServiceUnavailable && r.retryAfterOK && a.header.Get("Retry-After") != "":
		return classExpected, "503"
	}
	return classFailure, fmt.Sprintf("%d %s", a.status, r.op)
}

// stats counts the answers, safe for concurrent use.
type stats struct {
	mu       sync.Mutex
	requests int64
	expected map[string]int64
	failures map[string]int64
	examples map[string]string // the first failure of each kind, for the report
	outcomes map[string]int64  // orders by outcome, and short or undecided placements
	seen     map[string]bool   // outcome+order id already counted
	stopped  time.Time
	// The previous progress line's time and count, for the current rate.
	lastAt time.Time
	lastN  int64
}

func newStats() *stats {
	return &stats{expected: map[string]int64{}, failures: map[string]int64{}, examples: map[string]string{},
		outcomes: map[string]int64{}, seen: map[string]bool{}}
}

func (s *stats) count(r req, a answer) {
	class, kind := classify(r, a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if class == "" {
		return
	}
	s.requests++
	switch class {
	case classExpected:
		s.expected[kind]++
	case classFailure:
		if s.failures[kind] == 0 {
			s.examples[kind] = fmt.Sprintf("%s %s: %s", r.method, r.url, a.describe())
		}
		s.failures[kind]++
	}
}

// outcome counts a placement's or cancel's outcome ("confirmed", "rejected",
// "short", "undecided", "cancelled"): an order once per outcome however many
// answers named it, short and undecided placements (which name none) each.
func (s *stats) outcome(what, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != "" {
		if s.seen[what+" "+id] {
			return
		}
		s.seen[what+" "+id] = true
	}
	s.outcomes[what]++
}

func (s *stats) stop() {
	s.mu.Lock()
	s.stopped = time.Now()
	s.mu.Unlock()
}

// line is the progress line: time, requests, the rate since the previous
// line, failures and expected answers by kind, orders by outcome.
func (s *stats) line(start time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := time.Now()
	if !s.stopped.IsZero() {
		end = s.stopped
	}
	if s.lastAt.IsZero() {
		s.lastAt = start
	}
	rps := float64(s.requests-s.lastN) / max(end.Sub(s.lastAt).Seconds(), 0.001)
	s.lastAt, s.lastN = end, s.requests
	var b strings.Builder
	fmt.Fprintf(&b, "%5.1fs  req %d  %.0f/s  failures %d", end.Sub(start).Seconds(), s.requests, rps, sum(s.failures))
	writeCounts(&b, " ", s.failures)
	fmt.Fprintf(&b, "  expected %d", sum(s.expected))
	writeCounts(&b, " ", s.expected)
	b.WriteString("  orders")
	for _, k := range []string{"confirmed", "rejected", "short", "undecided", "cancelled"} {
		fmt.Fprintf(&b, " %s %d", k, s.outcomes[k])
	}
	return b.String()
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// writeCounts writes m as " [k1:v1 k2:v2]" in key order, nothing when empty.
func writeCounts(b *strings.Builder, sep string, m map[string]int64) {
	if len(m) == 0 {
		return
	}
	b.WriteString(sep + "[")
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(b, "%s:%d", k, m[k])
	}
	b.WriteString("]")
}
