package resilience

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"

	"github.com/pier-go/pier/problem"
)

// defaultShedRetryAfter is the shortest Retry-After the header can express.
const defaultShedRetryAfter = time.Second

// ShedOption configures [Shed].
type ShedOption func(*shedConfig)

type shedConfig struct {
	limiter    adaptivelimiter.AdaptiveLimiter[*http.Response]
	maxWait    time.Duration
	retryAfter time.Duration
	onShed     func(*http.Request)
}

// WithShedLimiter makes Shed use l, built with failsafe-go's
// adaptivelimiter.NewBuilder, instead of building one: to tune its limits
// (WithLimits), windows, queueing or logger, or to read its Limit and Inflight
// for metrics. The default is adaptivelimiter.NewBuilder's limiter, whose
// concurrency limit starts at 20 and moves between 1 and 200 as it watches
// latency: it falls when recent latencies (p90 over windows of 1 to 30 s and
// at least 50 requests) trend up against their baseline, which is what
// queueing looks like, and rises, to at most 5 times the requests in flight,
// while they do not. A nil l means the default.
func WithShedLimiter(l adaptivelimiter.AdaptiveLimiter[*http.Response]) ShedOption {
	return func(c *shedConfig) { c.limiter = l }
}

// WithShedMaxWait sets how long a request may wait for a permit once the limit
// is reached before it is shed. The default is 0, failsafe-go's: no waiting, since
// a queue in front of the limit hides the very latency the limiter watches.
// With a limiter given to WithShedLimiter that was built WithQueueing, its
// queue bounds apply as well. d <= 0 means the default.
func WithShedMaxWait(d time.Duration) ShedOption {
	return func(c *shedConfig) { c.maxWait = max(d, 0) }
}

// WithShedRetryAfter sets the Retry-After that a shed request is answered with,
// rounded up to whole seconds. The default is 1 s, the shortest the header can
// say: the limiter adapts within seconds, and [NewRetryBuilder] honours up to 10 s. d <=
// 0 means the default.
func WithShedRetryAfter(d time.Duration) ShedOption {
	return func(c *shedConfig) {
		if d > 0 {
			c.retryAfter = d
		}
	}
}

// WithOnShed registers fn to be called with every request that is shed, before
// it is answered: a hook for metrics. Each use adds a hook, run in the order
// given. The default is no hook.
func WithOnShed(fn func(*http.Request)) ShedOption {
	return func(c *shedConfig) { c.onShed = chain(c.onShed, fn) }
}

// Shed returns server-side load-shedding middleware built on failsafe-go's
// adaptive concurrency limiter: a request runs only when the number of requests
// in flight is under the limit, which the limiter adapts to the latency it
// observes (see [WithShedLimiter]); any other request is answered at once (or
// after [WithShedMaxWait]) with 503 Service Unavailable, a Retry-After header (1 s by default) and an RFC 9457
// problem+json body. Rejecting early and cheaply keeps latency flat for the
// requests that are admitted, and a 503 is what [IsFailure] and [NewRetryBuilder]
// expect of an overloaded instance, so the caller retries elsewhere.
//
// failsafehttp.NewHandler is not used: it answers limiter rejections with 429 in
// plain text. A request whose context ends before its handler returns does not
// count towards the limiter's latency samples, nor does a panicking one.
//
// Place it early in the stack, before work worth saving, but after recovery and
// request IDs, so that shed responses carry one. The middleware is safe for
// concurrent use; each call of Shed has its own limiter unless WithShedLimiter
// shares one.
func Shed(opts ...ShedOption) func(http.Handler) http.Handler {
	c := shedConfig{retryAfter: defaultShedRetryAfter}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	limiter := c.limiter
	if limiter == nil {
		limiter = adaptivelimiter.NewBuilder[*http.Response]().Build()
	}
	seconds := int64(math.Ceil(c.retryAfter.Seconds()))
	retryAfter := strconv.FormatInt(seconds, 10)
	detail := "the server is at its concurrency limit; retry after " + retryAfter + "s"
	onShed, maxWait := c.onShed, c.maxWait
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var permit adaptivelimiter.Permit
			ok := false
			if maxWait > 0 {
				var err error
				permit, err = limiter.AcquirePermitWithMaxWait(r.Context(), maxWait)
				ok = err == nil
			} else {
				permit, ok = limiter.TryAcquirePermit()
			}
			if !ok {
				if onShed != nil {
					onShed(r)
				}
				w.Header().Set("Retry-After", retryAfter)
				problem.Write(w, r, problem.Problem{Status: http.StatusServiceUnavailable, Detail: detail})
				return
			}
			returned := false
			defer func() {
				if returned && r.Context().Err() == nil {
					permit.Record()
				} else {
					permit.Drop() // canceled or panicking: its latency says nothing about load
				}
			}()
			next.ServeHTTP(w, r)
			returned = true
		})
	}
}
