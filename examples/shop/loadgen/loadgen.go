package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// Config configures Run. Target and the admin's credentials are required; the
// rest have defaults.
type Config struct {
	// Target is the gateway's base URL, such as http://127.0.0.1:8080. It
	// must name a loopback address.
	Target string
	// Payments is the payments service's own base URL (not routed by the
	// gateway), for the payments check. Empty skips that check, and the
	// report says so.
	Payments string
	// AdminEmail and AdminPassword log in the admin that creates the run's
	// products (and reads the payments service's charges).
	AdminEmail, AdminPassword string

	// Duration is how long load is sent. Default 10 s.
	Duration time.Duration
	// Stop, when closed, ends the load before Duration has passed; the
	// books are then checked as after a full run. Default nil: the load
	// runs for Duration.
	Stop <-chan struct{}
	// Rate is the requests per second sent. Default 50.
	Rate float64
	// Concurrency bounds the requests in flight. Default 16.
	Concurrency int
	// Seed seeds the mix, so that two runs draw the same actions.
	// Default 0 (a seed like any other).
	Seed uint64
	// Products is how many products the run creates. Default 4.
	Products int
	// Stock is each product's initial stock, below MaxStock. Default 300.
	Stock int64
	// Users is how many customers the run registers before it registers more
	// only as they reach MaxOrdersPerUser. Default 12.
	Users int
	// Timeout bounds each request. Default 15 s.
	Timeout time.Duration
	// Settle bounds the wait, after the load, for the books to balance:
	// pending orders decided, cancels finished, releases and refunds that the
	// shop owes done. Default 10 s.
	Settle time.Duration
	// Progress receives a progress line every ProgressEvery while the load
	// runs, and the phases' lines. Default: none.
	Progress io.Writer
	// ProgressEvery is the period of the progress line. Default 1 s.
	ProgressEvery time.Duration
	// Client sends every request. Default: a client with keep-alives whose
	// transport dials loopback addresses only.
	Client *http.Client
}

// MaxStock bounds Config.Stock: a short-stock order asks for one unit more
// than the initial stock, within the shop's 1000 units an item.
const MaxStock = 999

// MaxOrdersPerUser is how many placements the run makes per customer, so
// that GET /api/orders (the newest 100) returns all of them for the check.
const MaxOrdersPerUser = 60

// ErrNotLoopback is returned for a target that is not a loopback address.
var ErrNotLoopback = errors.New("loadgen: not a loopback address")

func (c *Config) defaults() error {
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Rate == 0 {
		c.Rate = 50
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Products == 0 {
		c.Products = 4
	}
	if c.Stock == 0 {
		c.Stock = 300
	}
	if c.Users == 0 {
		c.Users = 12
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = 10 * time.Second
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = time.Second
	}
	var errs []error
	switch {
	case c.Duration < 0 || c.Timeout < 0 || c.Settle < 0 || c.ProgressEvery < 0:
		errs = append(errs, errors.New("loadgen: negative duration"))
	case c.Rate < 0 || c.Concurrency < 0 || c.Products < 0 || c.Users < 0:
		errs = append(errs, errors.New("loadgen: negative rate, concurrency, products or users"))
	case c.Stock < 0 || c.Stock > MaxStock:
		errs = append(errs, fmt.Errorf("loadgen: stock %d is not within 1 and %d", c.Stock, MaxStock))
	}
	if c.AdminEmail == "" || c.AdminPassword == "" {
		errs = append(errs, errors.New("loadgen: the admin's email and password are required"))
	}
	if err := checkLoopback("target", c.Target); err != nil {
		errs = append(errs, err)
	}
	if c.Payments != "" {
		if err := checkLoopback("payments", c.Payments); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkLoopback checks that raw, the URL named what, is an http URL of a
// loopback host.
func checkLoopback(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("loadgen: %s %q is not an http://host:port URL", what, raw)
	}
	if h := u.Hostname(); h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%w: %s %s", ErrNotLoopback, what, raw)
		}
	}
	return nil
}

// loopbackClient is the default client: keep-alives for every worker, and a
// dialer that refuses any address but a loopback one (localhost may resolve
// to anything).
func loopbackClient(conns int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%w: %s", ErrNotLoopback, host)
		}
		return nil
	}}
	return &http.Client{Transport: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        conns + 8,
		MaxIdleConnsPerHost: conns + 8,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// Run creates the run's products as the admin, sends load for cfg.Duration,
// then reads the books back and checks them, again and again while they do
// not balance, until cfg.Settle has passed. The error is for a run that could not be made (bad
// configuration, the admin's log-in or a product's creation failing, ctx
// ended); what the load and the check found is in the Report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	g := newGen(cfg)
	if cfg.Client == nil {
		g.client = loopbackClient(cfg.Concurrency)
		defer g.client.CloseIdleConnections()
	}
	if err := g.setup(ctx); err != nil {
		return nil, err
	}
	g.drive(ctx)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: interrupted: %w", err)
	}
	b, err := g.settle(ctx)
	if err != nil {
		return nil, err
	}
	rep := g.report()
	rep.Violations = b.Check()
	rep.PaymentsChecked = g.cfg.Payments != ""
	rep.Orders = b.countStatuses()
	return rep, nil
}

// gen is one run's state, shared by its workers.
type gen struct {
	cfg    Config
	client *http.Client
	start  time.Time
	admin  string // the admin's token
	stats  *stats
	led    *ledger

	mu        sync.Mutex
	products  []*product
	users     []*user // with a token
	loggedOut []*user // registered, not logged in yet (the gateway limits log-ins)
	nextUser  int     // customers numbered so far
	// registering counts registrations in flight.
	registering int
	tour        int        // actions of mix sent once so far (pick)
	rng         *rand.Rand // the dispatcher's; only it draws from it
}

type product struct {
	ID      string
	Price   int64
	Initial int64
}

type user struct {
	Email, Password, ID string

	mu        sync.Mutex
	token     string
	placed    int      // placements started
	confirmed []string // confirmed orders not yet cancelled by the mix
	rejected  []string
}

func (u *user) bearer() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.token
}

func newGen(cfg Config) *gen {
	return &gen{
		cfg:    cfg,
		client: cfg.Client,
		stats:  newStats(),
		led:    newLedger(),
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
	}
}

// runID names the run's products and customers, so that runs against one
// shop never collide.
func (g *gen) runID() string { return fmt.Sprintf("%x", g.start.UnixNano()) }

// setup logs the admin in and creates the products.
func (g *gen) setup(ctx context.Context) error {
	g.start = time.Now()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	a := g.send(ctx, req{op: "admin login", method: "POST", url: g.cfg.Target + "/api/login",
		body: map[string]string{"email": g.cfg.AdminEmail, "password": g.cfg.AdminPassword}}, &tok)
	if a.err != nil || a.status != http.StatusOK || tok.AccessToken == "" {
		return fmt.Errorf("loadgen: admin log-in: %s", a.describe())
	}
	g.admin = tok.AccessToken
	for i := range g.cfg.Products {
		var p struct {
			ID         string `json:"id"`
			PriceCents int64  `json:"price_cents"`
			Stock      int64  `json:"stock"`
		}
		a := g.send(ctx, req{op: "admin create product", method: "POST", url: g.cfg.Target + "/api/products", token: g.admin,
			body: map[string]any{"name": fmt.Sprintf("loadgen %s #%d", g.runID(), i+1), "price_cents": 100 + 50*int64(i), "stock": g.cfg.Stock}}, &p)
		if a.err != nil || a.status != http.StatusCreated || p.ID == "" {
			return fmt.Errorf("loadgen: create product: %s", a.describe())
		}
		g.products = append(g.products, &product{ID: p.ID, Price: p.PriceCents, Initial: p.Stock})
	}
	g.progressf("loadgen: %d products of %d units created; %s of load at %g req/s, at most %d in flight, seed %d\n",
		len(g.products), g.cfg.Stock, g.cfg.Duration, g.cfg.Rate, g.cfg.Concurrency, g.cfg.Seed)
	return nil
}

func (g *gen) progressf(format string, args ...any) {
	if g.cfg.Progress != nil {
		fmt.Fprintf(g.cfg.Progress, format, args...)
	}
}

// drive sends the mix for cfg.Duration: a token bucket paces the requests,
// a semaphore bounds those in flight, and every action runs on its own
// goroutine, all waited for before drive returns.
func (g *gen) drive(ctx context.Context) {
	loadCtx, stop := context.WithTimeout(ctx, g.cfg.Duration)
	defer stop()
	burst := max(1, int(g.cfg.Rate/10), maxCost)
	lim := rate.NewLimiter(rate.Limit(g.cfg.Rate), burst)
	lim.AllowN(time.Now(), burst) // start with an empty bucket: no initial burst
	sem := semaphore.NewWeighted(int64(g.cfg.Concurrency))

	// The progress line goes on while the last actions finish.
	progressDone, progressStopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(progressStopped)
		g.progressLoop(progressDone)
	}()
	var wg sync.WaitGroup
	if g.cfg.Stop != nil {
		wg.Go(func() {
			select {
			case <-g.cfg.Stop:
				stop()
			case <-loadCtx.Done():
			}
		})
	}
	for loadCtx.Err() == nil {
		a := g.pick()
		cost, width := min(a.cost, burst), min(a.width, g.cfg.Concurrency)
		if lim.WaitN(loadCtx, cost) != nil {
			break
		}
		if sem.Acquire(loadCtx, int64(width)) != nil {
			break
		}
		seed := g.rng.Uint64()
		wg.Go(func() {
			defer sem.Release(int64(width))
			// Requests run to their end on the caller's context: the load's
			// end stops new actions, never cuts one in flight.
			a.run(g, ctx, rand.New(rand.NewPCG(seed, 0xac71)))
		})
	}
	wg.Wait()
	close(progressDone)
	<-progressStopped
	g.stats.stop()
	g.progressf("%s\n", g.stats.line(g.start))
}

// progressLoop writes the progress line every cfg.ProgressEvery until done
// is closed.
func (g *gen) progressLoop(done <-chan struct{}) {
	if g.cfg.Progress == nil {
		return
	}
	t := time.NewTicker(g.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			g.progressf("%s\n", g.stats.line(g.start))
		case <-done:
			return
		}
	}
}
