package shop

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/examples/shop/orders"
	"github.com/pier-go/pier/examples/shop/payments"
	"github.com/pier-go/pier/examples/shop/products"
	"github.com/pier-go/pier/examples/shop/users"
	"github.com/pier-go/pier/health"
	"github.com/pier-go/pier/service"
)

// Config configures the shop. DataDir is required; the rest have defaults.
type Config struct {
	// Addr is the gateway's address. Default ":8080".
	Addr string
	// DataDir holds every service's SQLite database and the signing key.
	DataDir string
	// Database is the database URL of every service's store (see Open in
	// each service's package): "postgres://..." keeps each service in its own
	// schema of that database, "sqlite:DIR" in its file in DIR. Default
	// DataDir: SQLite files beside the signing key.
	Database string
	// Logger receives every service's logs. Default: service.NewLogger().
	Logger *slog.Logger
	// DrainDelay is how long each service keeps serving after it turns
	// unready. Default 0: in one process the memory registry tells every
	// caller at once.
	DrainDelay time.Duration
	// ClientOptions are added to every service's client: retries, backoff,
	// timeouts. Not WithCircuitBreaker, whose builder one client only may use.
	ClientOptions []discovery.ClientOption
	// Payments configures the simulated processor (WithDelay, WithFailureRate).
	Payments []payments.Option
	// PasswordParams are argon2id's costs. Default users.DefaultPasswordParams.
	PasswordParams users.PasswordParams
	// LoginRate and LoginBurst bound the log-in attempts per client address
	// at the gateway. Defaults 1 a second, bursts of 10.
	LoginRate  float64
	LoginBurst int
}

// SweepInterval is how often orders looks for placements cut short
// (orders.Orders.Sweep).
const SweepInterval = 30 * time.Second

// Names of the services, as registered.
const (
	Users    = "users"
	Products = "products"
	Payments = "payments"
	Orders   = "orders"
	Gateway  = "gateway"
)

// Shop is the assembled shop. Make it with Open, start it with Run.
type Shop struct {
	cfg      Config
	log      *slog.Logger
	registry *registry

	usersStore    users.Database
	productsStore products.Database
	paymentsStore payments.Database
	ordersStore   orders.Database
	key           []byte
	// ordersSecret is the orders service's client secret for its own token,
	// made anew at each start: only this process needs it.
	ordersSecret string

	orders  *orders.Orders
	gateway *service.Service

	mu      sync.Mutex
	running map[string]*running
	closers []io.Closer
}

type running struct {
	svc  *service.Service
	stop context.CancelFunc
	// stopped ends when Run has returned, with err set.
	stopped context.Context
	err     error
}

// Open opens every service's store at cfg.Database, by default in
// cfg.DataDir (creating and migrating them), and loads or creates the signing
// key in cfg.DataDir. Close releases them; Run does
// not.
func Open(ctx context.Context, cfg Config) (*Shop, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("shop: no data directory")
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.LoginRate <= 0 {
		cfg.LoginRate = 1
	}
	if cfg.LoginBurst <= 0 {
		cfg.LoginBurst = 10
	}
	if cfg.PasswordParams == (users.PasswordParams{}) {
		cfg.PasswordParams = users.DefaultPasswordParams
	}
	s := &Shop{cfg: cfg, log: cfg.Logger, registry: newRegistry(), running: map[string]*running{},
		ordersSecret: rand.Text()}
	if s.log == nil {
		l, err := service.NewLogger()
		if err != nil {
			return nil, fmt.Errorf("shop: %w", err)
		}
		s.log = l
	}
	db := cfg.Database
	if db == "" {
		db = cfg.DataDir
	}
	var err error
	if s.usersStore, err = users.Open(ctx, db); err == nil {
		s.closers = append(s.closers, s.usersStore)
	}
	if err == nil {
		if s.productsStore, err = products.Open(ctx, db); err == nil {
			s.closers = append(s.closers, s.productsStore)
		}
	}
	if err == nil {
		if s.paymentsStore, err = payments.Open(ctx, db); err == nil {
			s.closers = append(s.closers, s.paymentsStore)
		}
	}
	if err == nil {
		if s.ordersStore, err = orders.Open(ctx, db); err == nil {
			s.closers = append(s.closers, s.ordersStore)
		}
	}
	if err == nil {
		s.key, err = users.LoadOrCreateKey(cfg.DataDir)
	}
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// Close closes the stores. Call it after Run has returned.
func (s *Shop) Close() error {
	var errs []error
	for _, c := range slices.Backward(s.closers) {
		errs = append(errs, c.Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// build makes the named service from the shop's stores, on a free loopback
// port (the gateway on the shop's address), in the shop's registry.
func (s *Shop) build(name string) (*Node, error) {
	p := Parts{
		Logger:         s.log,
		Key:            s.key,
		OrdersSecret:   s.ordersSecret,
		PasswordParams: s.cfg.PasswordParams,
		PaymentOptions: s.cfg.Payments,
		Routes:         Routes(s.cfg.LoginRate, s.cfg.LoginBurst),
	}
	var err error
	switch name {
	case Users:
		p.Users, p.DB = s.usersStore, health.CheckerFunc(s.usersStore.Ping)
	case Products:
		p.Products, p.DB = s.productsStore, health.CheckerFunc(s.productsStore.Ping)
	case Payments:
		p.Payments, p.DB = s.paymentsStore, health.CheckerFunc(s.paymentsStore.Ping)
		p.Keys, err = s.paymentsStore.IdempotencyStore()
	case Orders:
		p.Orders, p.DB = s.ordersStore, health.CheckerFunc(s.ordersStore.Ping)
		p.Keys, err = s.ordersStore.IdempotencyStore()
	}
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:0"
	if name == Gateway {
		addr = s.cfg.Addr
	}
	opts := []service.Option{
		service.WithAddr(addr),
		service.WithLogger(s.log),
		service.WithRegistry(s.registry),
		service.WithClientOptions(s.cfg.ClientOptions...),
	}
	if s.cfg.DrainDelay > 0 {
		opts = append(opts, service.WithShutdown(s.cfg.DrainDelay, 0))
	} else {
		opts = append(opts, service.WithoutDrainDelay())
	}
	n, err := NewNode(name, p, opts...)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if n.Orders != nil {
		s.orders = n.Orders
	}
	s.mu.Unlock()
	return n, nil
}

// start builds the named service and runs it until stop.
func (s *Shop) start(ctx context.Context, name string) error {
	n, err := s.build(name)
	if err != nil {
		return fmt.Errorf("shop: %s: %w", name, err)
	}
	svc := n.Service
	ctx, cancel := context.WithCancel(ctx)
	stopped, done := context.WithCancel(context.Background())
	r := &running{svc: svc, stop: cancel, stopped: stopped}
	s.mu.Lock()
	s.running[name] = r
	if name == Gateway {
		s.gateway = svc
	}
	s.mu.Unlock()
	go func() {
		r.err = n.Run(ctx)
		done()
	}()
	return nil
}

// stop stops the named service and waits for it.
func (s *Shop) stop(name string) error {
	s.mu.Lock()
	r := s.running[name]
	delete(s.running, name)
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.stop()
	<-r.stopped.Done()
	if r.err != nil {
		return fmt.Errorf("shop: %s: %w", name, r.err)
	}
	return nil
}

// Run starts every service and the gateway, waits until each is registered
// and then calls ready (if not nil) with the gateway's address; it serves
// until ctx ends and then stops the gateway first, orders next, and the
// services orders calls last.
func (s *Shop) Run(ctx context.Context, ready func(gateway net.Addr)) error {
	stopAll := func() error {
		errs := []error{s.stop(Gateway), s.stop(Orders)}
		var wg sync.WaitGroup
		rest := make([]error, 3)
		for i, name := range []string{Payments, Products, Users} {
			wg.Go(func() { rest[i] = s.stop(name) })
		}
		wg.Wait()
		errs = append(errs, rest...)
		return errors.Join(errs...)
	}
	for _, name := range ServiceNames() {
		if err := s.start(ctx, name); err != nil {
			return errors.Join(err, stopAll())
		}
	}
	if err := s.waitRegistered(ctx, ServiceNames()...); err != nil {
		if ctx.Err() != nil {
			return stopAll()
		}
		return errors.Join(err, stopAll())
	}
	if ready != nil {
		ready(s.gatewayAddr())
	}
	<-ctx.Done()
	return stopAll()
}

func (s *Shop) gatewayAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gateway.Addr()
}

// waitRegistered waits until every named service has an instance in the
// registry, or one of them stops first.
func (s *Shop) waitRegistered(ctx context.Context, names ...string) error {
	for _, name := range names {
		s.mu.Lock()
		r := s.running[name]
		s.mu.Unlock()
		if err := s.waitOne(ctx, name, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Shop) waitOne(ctx context.Context, name string, r *running) error {
	select {
	case <-s.registry.registered(name):
		return nil
	case <-r.stopped.Done():
		// Why it stopped is the error its Run returned, which stopping the
		// others reports: saying it here too would print it twice.
		return fmt.Errorf("shop: %s stopped before it registered", name)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// registry is the memory registry, telling when a service has registered.
type registry struct {
	*discovery.Memory
	mu      sync.Mutex
	waiters map[string]chan struct{}
}

func newRegistry() *registry {
	return &registry{Memory: discovery.NewMemory(), waiters: map[string]chan struct{}{}}
}

// Register implements discovery.Registrar.
func (r *registry) Register(ctx context.Context, in discovery.Instance) error {
	if err := r.Memory.Register(ctx, in); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.waiter(in.Service)
	select {
	case <-ch:
	default:
		close(ch)
	}
	return nil
}

// Deregister implements discovery.Registrar.
func (r *registry) Deregister(ctx context.Context, in discovery.Instance) error {
	err := r.Memory.Deregister(ctx, in)
	if _, rerr := r.Memory.Resolve(ctx, in.Service); rerr != nil {
		r.mu.Lock()
		delete(r.waiters, in.Service) // the next registration closes a new channel
		r.mu.Unlock()
	}
	return err
}

// registered returns a channel closed once service has an instance.
func (r *registry) registered(service string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiter(service)
}

func (r *registry) waiter(service string) chan struct{} {
	ch, ok := r.waiters[service]
	if !ok {
		ch = make(chan struct{})
		r.waiters[service] = ch
	}
	return ch
}
