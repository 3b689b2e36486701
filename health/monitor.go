package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Option configures a [Monitor] built by [New].
type Option func(*monitorConfig)

type monitorConfig struct {
	ttl     time.Duration
	noCache bool
}

// WithCacheTTL sets how long a check's result is reused before the check runs
// again. The default is [DefaultCacheTTL], 1 s; 0 keeps it, a negative d makes
// [New] fail, and [WithoutCache] turns caching off.
func WithCacheTTL(d time.Duration) Option {
	return func(c *monitorConfig) { c.ttl = d }
}

// WithoutCache makes every probe run the checks, though probes that arrive
// while a check is running still share that run. The default is to reuse a
// result for [DefaultCacheTTL].
func WithoutCache() Option {
	return func(c *monitorConfig) { c.noCache = true }
}

// CheckOption configures one check added by [Monitor.Add].
type CheckOption func(*checkConfig)

type checkConfig struct {
	timeout  time.Duration
	critical bool
}

// Timeout bounds each run of the check to d; a run still going at d is reported
// failed ("timed out after d"). The default is [DefaultTimeout], 1 s; 0 keeps it,
// and a negative d makes [Monitor.Add] fail.
func Timeout(d time.Duration) CheckOption {
	return func(c *checkConfig) { c.timeout = d }
}

// NonCritical makes the check advisory: its failure turns the status to "warn" but
// leaves the instance ready. By default a check is critical: its failure makes the
// instance unready.
func NonCritical() CheckOption {
	return func(c *checkConfig) { c.critical = false }
}

// Monitor runs a service's checks and tracks its lifecycle [State]; its handlers
// serve the health endpoints. Create one with [New]; the zero Monitor is not usable.
// A Monitor is safe for concurrent use: checks may be added, the state changed and
// the handlers served from any goroutines at once.
type Monitor struct {
	ttl   time.Duration
	now   func() time.Time // the clock for caching and durations; tests replace it
	state atomic.Int32

	mu     sync.Mutex
	checks []*check // copied on write, so a snapshot can be read without the lock
	names  map[string]bool
}

// New returns a Monitor in [StateStarting] with no checks. It returns an error
// for a nil option or a negative cache TTL.
func New(opts ...Option) (*Monitor, error) {
	var c monitorConfig
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("health: nil option")
		}
		o(&c)
	}
	if c.ttl < 0 {
		return nil, fmt.Errorf("health: negative cache TTL %v", c.ttl)
	}
	ttl := cmp.Or(c.ttl, DefaultCacheTTL)
	if c.noCache {
		ttl = 0
	}
	return &Monitor{ttl: ttl, now: time.Now, names: make(map[string]bool)}, nil
}

// Add registers checker c under name. The check is critical and times out after
// [DefaultTimeout] unless opts say otherwise (see [NonCritical], [Timeout]). Add
// returns an error, and adds nothing, when name is empty or already used, c is
// nil, an option is nil, or the timeout is negative. It is safe to call while the handlers
// serve; the next probe includes the new check.
func (m *Monitor) Add(name string, c Checker, opts ...CheckOption) error {
	if name == "" {
		return errors.New("health: check name is empty")
	}
	if c == nil {
		return fmt.Errorf("health: check %q: checker is nil", name)
	}
	if f, ok := c.(CheckerFunc); ok && f == nil {
		return fmt.Errorf("health: check %q: checker is a nil CheckerFunc", name)
	}
	cfg := checkConfig{critical: true}
	for _, o := range opts {
		if o == nil {
			return fmt.Errorf("health: check %q: nil option", name)
		}
		o(&cfg)
	}
	if cfg.timeout < 0 {
		return fmt.Errorf("health: check %q: negative timeout %v", name, cfg.timeout)
	}
	cfg.timeout = cmp.Or(cfg.timeout, DefaultTimeout)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names[name] {
		return fmt.Errorf("health: check %q already added", name)
	}
	m.names[name] = true
	chk := &check{name: name, checker: c, timeout: cfg.timeout, critical: cfg.critical}
	m.checks = append(m.checks[:len(m.checks):len(m.checks)], chk)
	return nil
}

// SetState sets the lifecycle state. The service moves it from [StateStarting] to
// [StateServing] once it serves, and to [StateDraining] when it begins to stop;
// readiness answers 503 in every state but StateServing. It is safe for concurrent
// use.
func (m *Monitor) SetState(s State) { m.state.Store(int32(s)) }

// State returns the lifecycle state, [StateStarting] until [Monitor.SetState] is
// called. It is safe for concurrent use.
func (m *Monitor) State() State { return State(m.state.Load()) }

// Report runs the checks in parallel, or reuses their cached results, and returns
// their outcome with the lifecycle state. It is safe for concurrent use; concurrent
// calls share each stale check's run.
//
// Each check runs with a context derived from ctx without its cancellation, so ctx
// passes its values to the checkers, but ending ctx neither cancels a run nor
// spoils the result other probes share. A run Report starts itself is bounded by the
// check's timeout; for a run it shares with another probe, Report stops waiting
// when ctx ends and reports that check failed with ctx's error (uncached). So
// Report returns within the longest check timeout, plus scheduling delays, and
// leaves no goroutine behind but those of checkers that ignore their context.
func (m *Monitor) Report(ctx context.Context) Report {
	m.mu.Lock()
	checks := m.checks
	m.mu.Unlock()

	results := make([]Result, len(checks))
	var pending []job
	now := m.now()
	for i, c := range checks {
		res, f, lead := c.begin(now, m.ttl)
		if f == nil {
			results[i] = res
			continue
		}
		pending = append(pending, job{i: i, f: f, lead: lead})
	}
	switch len(pending) {
	case 0:
	case 1:
		j := pending[0]
		results[j.i] = m.finish(ctx, checks[j.i], j)
	default:
		var wg sync.WaitGroup
		for _, j := range pending {
			wg.Go(func() { results[j.i] = m.finish(ctx, checks[j.i], j) })
		}
		wg.Wait()
	}

	status := StatusPass
	for _, r := range results {
		switch r.Status {
		case StatusFail:
			status = StatusFail
		case StatusWarn:
			if status == StatusPass {
				status = StatusWarn
			}
		}
	}
	state := m.State() // read after the checks, the fresher the better
	ready := state == StateServing && status != StatusFail
	if !ready {
		status = StatusFail
	}
	return Report{Status: status, State: state, Ready: ready, Checks: results}
}

// job is a check Report has to wait for: one it runs (lead) or shares.
type job struct {
	i    int
	f    *flight
	lead bool
}

// flight is one run of a check, shared by the probes that arrive while it runs.
type flight struct {
	done    chan struct{} // closed when res is set
	res     Result
	waiters int // probes sharing the run besides its leader; guarded by check.mu
}

// check is one added check with its cache and in-flight state.
type check struct {
	name     string
	checker  Checker
	timeout  time.Duration
	critical bool

	mu      sync.Mutex
	last    Result // the cached result, when cached is true
	cached  bool
	expires time.Time // when last goes stale
	flight  *flight   // the run in progress, if any
	running bool      // a checker goroutine has not returned yet (it may outlive its flight)
	started time.Time // when that goroutine started
}

// begin decides what a probe at now does about c: use a result at once (f ==
// nil), share the run in flight (f != nil, !lead), or start a run and lead it.
func (c *check) begin(now time.Time, ttl time.Duration) (res Result, f *flight, lead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ttl > 0 && c.cached && now.Before(c.expires):
		return c.last, nil, false
	case c.flight != nil:
		c.flight.waiters++
		return Result{}, c.flight, false
	case c.running:
		// The last run was cut off at its timeout and its goroutine is still stuck:
		// starting another would only pile them up.
		since := now.Sub(c.started).Round(time.Millisecond)
		return c.result(fmt.Errorf("previous run still in progress since %v", since), 0, now), nil, false
	}
	c.flight = &flight{done: make(chan struct{})}
	c.running = true
	c.started = now
	return Result{}, c.flight, true
}

// finish completes j for c: it runs the check if j leads its flight, otherwise it
// waits for the leader's result or for ctx to end.
func (m *Monitor) finish(ctx context.Context, c *check, j job) Result {
	if j.lead {
		return m.run(ctx, c, j.f)
	}
	select {
	case <-j.f.done:
		return j.f.res
	case <-ctx.Done():
		return c.result(fmt.Errorf("probe gave up waiting for the check: %w", ctx.Err()), 0, m.now())
	}
}

// run runs c's checker for flight f, bounded by c's timeout even when the checker
// ignores its context, then caches and publishes the result.
func (m *Monitor) run(ctx context.Context, c *check, f *flight) Result {
	start := m.now()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	done := make(chan error, 1) // buffered: a goroutine abandoned at the timeout must not block
	go c.call(cctx, done)

	var err error
	select {
	case err = <-done:
		if err != nil && errors.Is(err, context.DeadlineExceeded) && cctx.Err() != nil {
			err = c.timeoutError()
		}
	case <-cctx.Done():
		err = c.timeoutError()
	}
	end := m.now()
	res := c.result(err, end.Sub(start), end)

	c.mu.Lock()
	c.last, c.cached, c.expires = res, true, end.Add(m.ttl)
	c.flight = nil
	f.res = res
	c.mu.Unlock()
	close(f.done)
	return res
}

// call runs the checker and sends its error on done, turning a panic into an
// error. It marks the check idle before sending, so once the leader has the error
// the next run may start.
func (c *check) call(ctx context.Context, done chan<- error) {
	err := errors.New("checker exited without returning") // stays when it calls runtime.Goexit
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		done <- err
	}()
	err = c.checker.Check(ctx)
}

func (c *check) timeoutError() error {
	return fmt.Errorf("timed out after %v", c.timeout)
}

// result builds c's Result for err.
func (c *check) result(err error, d time.Duration, at time.Time) Result {
	r := Result{Name: c.name, Critical: c.critical, Status: StatusPass, Duration: d, CheckedAt: at}
	if err != nil {
		r.Error = err.Error()
		if r.Error == "" {
			r.Error = "check failed"
		}
		r.Status = StatusFail
		if !c.critical {
			r.Status = StatusWarn
		}
	}
	return r
}
