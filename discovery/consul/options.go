package consul

import (
	"cmp"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults of a [Registry]. Each can be changed with the option named beside it.
const (
	// DefaultHealthPath is the path Consul's HTTP check requests on every
	// instance ([WithHealthPath]): the readiness endpoint of a pier service, so
	// that an instance that turns unready leaves the resolved set.
	DefaultHealthPath = "/health/ready"
	// DefaultCheckInterval is how often Consul runs the HTTP check
	// ([WithCheckInterval]).
	DefaultCheckInterval = 5 * time.Second
	// DefaultCheckTimeout bounds one run of the HTTP check ([WithCheckTimeout]).
	DefaultCheckTimeout = 2 * time.Second
	// DefaultDeregisterCriticalAfter is how long an instance's check may stay
	// critical before Consul removes the instance ([WithDeregisterCriticalAfter]).
	DefaultDeregisterCriticalAfter = time.Minute
	// DefaultReregisterInterval is how often the registry confirms each of its
	// instances with the agent ([WithReregisterInterval]).
	DefaultReregisterInterval = 10 * time.Second
	// DefaultWaitTime is how long one blocking query of a watch waits for a
	// change ([WithWaitTime]).
	DefaultWaitTime = time.Minute
)

// MaxWaitTime is the longest blocking-query wait Consul honours; it caps longer
// ones.
const MaxWaitTime = 10 * time.Minute

// minTTL is the shortest TTL [WithTTL] accepts.
const minTTL = time.Second

// Option configures a [Registry]. Options are applied in order by [New].
type Option func(*config)

type config struct {
	healthPath              string
	checkInterval           time.Duration
	checkTimeout            time.Duration
	deregisterCriticalAfter time.Duration
	noDeregisterCritical    bool // WithoutDeregisterCritical
	ttl                     time.Duration
	reregisterInterval      time.Duration
	tags                    []string
	datacenter              string
	waitTime                time.Duration
	logger                  *slog.Logger
	minBackoff, maxBackoff  time.Duration
	meterProvider           metric.MeterProvider
}

func defaultConfig() config {
	return config{
		healthPath:              DefaultHealthPath,
		checkInterval:           DefaultCheckInterval,
		checkTimeout:            DefaultCheckTimeout,
		deregisterCriticalAfter: DefaultDeregisterCriticalAfter,
		reregisterInterval:      DefaultReregisterInterval,
		waitTime:                DefaultWaitTime,
	}
}

// validate reports the first option value that cannot work.
func (c *config) validate() error {
	switch {
	case !strings.HasPrefix(c.healthPath, "/"):
		return fmt.Errorf("health path %q: want a path starting with /", c.healthPath)
	case c.checkInterval <= 0:
		return fmt.Errorf("check interval %v: want > 0", c.checkInterval)
	case c.checkTimeout <= 0:
		return fmt.Errorf("check timeout %v: want > 0", c.checkTimeout)
	case c.deregisterCriticalAfter < 0:
		return fmt.Errorf("deregister-critical-after %v: want > 0", c.deregisterCriticalAfter)
	case c.ttl != 0 && c.ttl < minTTL:
		return fmt.Errorf("TTL %v: want at least %v", c.ttl, minTTL)
	case c.reregisterInterval <= 0:
		return fmt.Errorf("re-register interval %v: want > 0", c.reregisterInterval)
	case c.waitTime <= 0 || c.waitTime > MaxWaitTime:
		return fmt.Errorf("wait time %v: want > 0 and at most %v", c.waitTime, MaxWaitTime)
	case c.minBackoff < 0 || c.maxBackoff < 0 || c.maxBackoff > 0 && c.maxBackoff < c.minBackoff:
		return fmt.Errorf("backoff %v to %v: want 0 <= min <= max", c.minBackoff, c.maxBackoff)
	}
	for _, t := range c.tags {
		if t == "" {
			return fmt.Errorf("tags %q: empty tag", c.tags)
		}
	}
	return nil
}

// WithHealthPath sets the path of the HTTP check Consul runs against every
// registered instance: GET http://<Instance.Addr><path> must answer 2xx. The
// default is [DefaultHealthPath], "/health/ready", the readiness endpoint every
// pier service serves, so that a draining or unready instance leaves the
// resolved set. It has no effect with [WithTTL].
func WithHealthPath(p string) Option {
	return func(c *config) { c.healthPath = cmp.Or(p, c.healthPath) }
}

// WithCheckInterval sets how often Consul runs the HTTP check. The default is
// [DefaultCheckInterval], 5 s: a dead instance leaves the resolved set within
// about one interval, for one small request per interval per instance. Consul
// runs checks at most once a second. 0 keeps the default; a negative d makes
// [New] fail.
func WithCheckInterval(d time.Duration) Option {
	return func(c *config) { c.checkInterval = cmp.Or(d, c.checkInterval) }
}

// WithCheckTimeout bounds one run of the HTTP check; a check that takes longer
// is critical. The default is [DefaultCheckTimeout], 2 s: well under the
// default interval, and far longer than a readiness endpoint should take. 0
// keeps the default; a negative d makes [New] fail.
func WithCheckTimeout(d time.Duration) Option {
	return func(c *config) { c.checkTimeout = cmp.Or(d, c.checkTimeout) }
}

// WithDeregisterCriticalAfter sets how long an instance's check may stay
// critical before Consul removes the instance from its catalog, so that a
// crashed instance that never deregistered does not stay there forever. It
// applies to HTTP and TTL checks. The default is
// [DefaultDeregisterCriticalAfter], 1 min: Consul's minimum (its reaper runs
// every 30 s, so removal takes 1 to 1.5 min). 0 keeps the default, a negative
// d makes [New] fail, and [WithoutDeregisterCritical] turns removal off.
// Resolve stops returning a critical instance at once, whatever this is.
func WithDeregisterCriticalAfter(d time.Duration) Option {
	return func(c *config) { c.deregisterCriticalAfter = cmp.Or(d, c.deregisterCriticalAfter) }
}

// WithoutDeregisterCritical keeps instances whose check is critical in
// Consul's catalog until they deregister themselves: Resolve still leaves them
// out. The default removes them after [DefaultDeregisterCriticalAfter].
func WithoutDeregisterCritical() Option {
	return func(c *config) { c.noDeregisterCritical = true }
}

// WithTTL switches from HTTP checks to TTL checks: instead of Consul calling the
// instance, the Registry marks each instance's check passing every ttl/3 from a
// goroutine of its own, and Consul turns the check critical when ttl passes
// without a mark. Use it when Consul cannot reach the instances' addresses. The
// check then says only that the registering process is alive, not that it is
// ready. The default is 0: HTTP checks. ttl must be at least 1 s.
func WithTTL(ttl time.Duration) Option {
	return func(c *config) { c.ttl = ttl }
}

// WithReregisterInterval sets how often the Registry confirms each instance it
// registered with the agent, and registers it again when the agent has lost it
// (an agent restarted with an empty state). With [WithTTL], an agent that no
// longer knows the check triggers the same at the next mark. The default is
// [DefaultReregisterInterval], 10 s: an agent restart costs at most that long
// out of the catalog, for one cheap agent-local request per interval per
// instance. 0 keeps the default; a negative d makes [New] fail.
func WithReregisterInterval(d time.Duration) Option {
	return func(c *config) { c.reregisterInterval = cmp.Or(d, c.reregisterInterval) }
}

// WithTags makes Resolve return only the instances that carry every one of
// tags, filtered by Consul (the health endpoint's tag filter). The default is
// none: every healthy instance. Tags given to Register are not affected.
func WithTags(tags ...string) Option {
	return func(c *config) { c.tags = append(c.tags, tags...) }
}

// WithDatacenter makes Resolve query the datacenter dc instead of the agent's
// own. The default is "": the agent's datacenter. Registration always goes to
// the local agent.
func WithDatacenter(dc string) Option {
	return func(c *config) { c.datacenter = dc }
}

// WithWaitTime sets how long each blocking query of a watch waits for a change
// before it returns unchanged and the next one starts. Changes arrive as soon
// as Consul sees them whatever this is; it bounds how long a connection that
// died silently (a network partition, not a stopped agent, which fails at once)
// goes unnoticed, during which Staleness still reads 0. The default is
// [DefaultWaitTime], 1 min: that bound, for one idle request per minute per
// watched service; Consul's own default is 5 min and it caps at [MaxWaitTime],
// 10 min. 0 keeps the default; a negative d, or one over MaxWaitTime, makes
// [New] fail.
func WithWaitTime(d time.Duration) Option {
	return func(c *config) { c.waitTime = cmp.Or(d, c.waitTime) }
}

// WithLogger sets the logger for events in the background: registering an
// instance again, failed confirmations and TTL marks, failed watches. Register
// and Deregister return their errors instead of logging them. The default
// discards everything; nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithBackoff sets how a failing watch retries: it waits min, doubling up to
// max, with jitter, and starts again from min after a success. The defaults are
// those of the shared resolver cache: 250 ms and 30 s. 0 keeps a default.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) { c.minBackoff, c.maxBackoff = min, max }
}

// WithMeterProvider sets where the registry's metrics go: for every service
// Resolve watches, pier.discovery.instances (the instances Resolve returns),
// pier.discovery.staleness (see [Registry.Staleness], in seconds) and
// pier.discovery.watch.errors (failed blocking queries), with the attributes
// pier.service and registry="consul". The gauges' callback is unregistered
// by [Registry.Close]. The default is otel.GetMeterProvider() at the time of
// [New], the global provider; nil keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}
