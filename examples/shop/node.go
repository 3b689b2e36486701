package shop

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pier-go/pier/examples/shop/internal/shopauth"
	"github.com/pier-go/pier/examples/shop/orders"
	"github.com/pier-go/pier/examples/shop/payments"
	"github.com/pier-go/pier/examples/shop/products"
	"github.com/pier-go/pier/examples/shop/users"
	"github.com/pier-go/pier/gateway"
	"github.com/pier-go/pier/health"
	"github.com/pier-go/pier/idempotency"
	"github.com/pier-go/pier/service"
)

// ServiceNames returns the names of the shop's services in start order, the
// gateway last. cmd/shop runs them all in one process; cmd/<name> runs one.
func ServiceNames() []string { return []string{Users, Products, Payments, Orders, Gateway} }

// Parts are what NewNode builds one of the shop's services from. Only the
// fields the named service uses are read: Users and Key for users, Products
// for products, Payments and Keys for payments, Orders and Keys for orders,
// Routes for the gateway.
type Parts struct {
	Users    users.Store
	Products products.Store
	Payments payments.Store
	Orders   orders.Store
	// Keys keeps the Idempotency-Keys of payments or orders.
	Keys idempotency.Store
	// DB checks the service's database; it becomes the critical readiness
	// check "db". Nil means no check (the gateway has no database).
	DB health.Checker
	// Key signs the users service's tokens.
	Key ed25519.PrivateKey
	// PasswordParams are argon2id's costs. Default users.DefaultPasswordParams.
	PasswordParams users.PasswordParams
	// PaymentOptions configure the simulated processor.
	PaymentOptions []payments.Option
	// OrdersSecret is the orders service's client secret: orders gets its
	// own token from users with it (to reserve stock and charge cards), and
	// users accepts it. Required by orders; users grants no client token
	// without it. Every users and orders instance must share it.
	OrdersSecret string
	// SweepInterval is how often orders looks for placements cut short
	// (orders.Orders.Sweep). Default SweepInterval.
	SweepInterval time.Duration
	// Routes are the gateway's routes. Default Routes(1, 10).
	Routes []gateway.Route
	// Logger is the logger of the verifiers and the gateway; the Service's
	// own comes from its options. Default slog.New(slog.DiscardHandler).
	Logger *slog.Logger
}

// Node is one of the shop's services, built by NewNode: its Service with
// the routes mounted, and the token verifier it owns.
type Node struct {
	// Service is the running part; its Addr is known once Run has bound it.
	Service *service.Service

	// users and orders are the services, when the node runs one of them.
	users  *users.Users
	orders *orders.Orders
	// startSweep and stopSweep run the orders sweeper.
	startSweep, stopSweep func(context.Context) error

	closeOnce sync.Once
	closers   []io.Closer
	closeErr  error
}

// NewNode makes the service name (Users, Products, Payments, Orders or
// Gateway) from p, on a Service made with opts (address, registry, logger,
// shutdown timings) and the readiness check of p.DB. Every service but users
// verifies tokens on the users service's JWKS, read through the Service's
// discovery-aware client; the gateway is ready once every routed service
// has a ready instance.
func NewNode(name string, p Parts, opts ...service.Option) (*Node, error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.PasswordParams == (users.PasswordParams{}) {
		p.PasswordParams = users.DefaultPasswordParams
	}
	if p.DB != nil {
		opts = append([]service.Option{service.WithHealthCheck("db", p.DB)}, opts...)
	}
	if p.SweepInterval == 0 {
		p.SweepInterval = SweepInterval
	}
	n := &Node{}
	if name == Orders {
		// The sweeper's hook is made once orders is, which needs the Service.
		opts = append(opts,
			service.WithOnStart(func(ctx context.Context) error { return n.startSweep(ctx) }),
			service.WithOnStop(func(ctx context.Context) error { return n.stopSweep(ctx) }))
	}
	var gw *gateway.Gateway
	if name == Gateway {
		opts = append(opts, service.WithHealthCheck("routes",
			health.CheckerFunc(func(ctx context.Context) error { return gw.Ready(ctx) })))
	}
	svc, err := service.New(name, opts...)
	if err != nil {
		return nil, fmt.Errorf("shop: %s: %w", name, err)
	}
	n.Service = svc
	var v *shopauth.Verifier
	if name != Users {
		if v, err = shopauth.NewVerifier(svc.Client(), p.Logger); err != nil {
			return nil, fmt.Errorf("shop: %s: %w", name, err)
		}
		n.closers = append(n.closers, v)
	}
	missing := func(what string) error { return fmt.Errorf("shop: %s: no %s", name, what) }
	switch name {
	case Users:
		if p.Users == nil {
			return nil, missing("store")
		}
		uopts := []users.Option{users.WithPasswordParams(p.PasswordParams)}
		if p.OrdersSecret != "" {
			uopts = append(uopts, users.WithClients(users.Client{ID: Orders, Secret: p.OrdersSecret, Scopes: []string{shopauth.InternalScope}}))
		}
		n.users, err = users.New(svc, p.Users, p.Key, uopts...)
		if n.users != nil {
			n.closers = append(n.closers, n.users)
		}
	case Products:
		if p.Products == nil {
			return nil, errors.Join(missing("store"), n.Close())
		}
		_, err = products.New(svc, p.Products, v)
	case Payments:
		if p.Payments == nil || p.Keys == nil {
			return nil, errors.Join(missing("store"), n.Close())
		}
		_, err = payments.New(svc, p.Payments, p.Keys, v, p.PaymentOptions...)
	case Orders:
		if p.Orders == nil || p.Keys == nil {
			return nil, errors.Join(missing("store"), n.Close())
		}
		if p.OrdersSecret == "" {
			return nil, errors.Join(missing("client secret"), n.Close())
		}
		n.orders, err = orders.New(svc, p.Orders, p.Keys, v, shopauth.ServiceTokens(svc.Client(), Orders, p.OrdersSecret))
		if err == nil {
			n.startSweep, n.stopSweep = n.orders.Sweeper(p.SweepInterval)
		}
	case Gateway:
		routes := p.Routes
		if routes == nil {
			routes = Routes(1, 10)
		}
		gw, err = gateway.New(svc.Client(), routes, gateway.WithVerifier(v), gateway.WithLogger(p.Logger))
		if err == nil {
			svc.Handle("/api/", gw)
		}
	default:
		return nil, errors.Join(fmt.Errorf("shop: no service %q", name), n.Close())
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("shop: %s: %w", name, err), n.Close())
	}
	return n, nil
}

// Run runs the Service until ctx ends, then closes what the node owns.
func (n *Node) Run(ctx context.Context) error {
	return errors.Join(n.Service.Run(ctx), n.Close())
}

// Close closes the node's verifiers. Run calls it; call it for a node that
// never ran. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		for _, c := range slices.Backward(n.closers) {
			errs = append(errs, c.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// OpenParts opens the database of the service name at database and returns
// the Parts that NewNode needs from it, and what closes it. The gateway has no
// database: it gets empty Parts. database is a URL:
//
//	sqlite:/var/lib/shop   SQLite files (<service>.db) in that directory
//	/var/lib/shop          the same
//	postgres://...         PostgreSQL (postgresql:// too)
//
// Errors name the service and what failed, on one line.
func OpenParts(ctx context.Context, name, database string) (Parts, io.Closer, error) {
	if name == Gateway {
		return Parts{}, io.NopCloser(nil), nil
	}
	if !slices.Contains(ServiceNames(), name) {
		return Parts{}, nil, fmt.Errorf("shop: no service %q", name)
	}
	if _, _, err := ParseDatabase(database); err != nil {
		return Parts{}, nil, err
	}
	var p Parts
	var c io.Closer
	var err error
	switch name {
	case Users:
		var s users.Database
		if s, err = users.Open(ctx, database); err == nil {
			p.Users, p.DB, c = s, health.CheckerFunc(s.Ping), s
		}
	case Products:
		var s products.Database
		if s, err = products.Open(ctx, database); err == nil {
			p.Products, p.DB, c = s, health.CheckerFunc(s.Ping), s
		}
	case Payments:
		var s payments.Database
		if s, err = payments.Open(ctx, database); err == nil {
			p.Payments, p.DB, c = s, health.CheckerFunc(s.Ping), s
			if p.Keys, err = s.IdempotencyStore(); err != nil {
				err = errors.Join(err, s.Close())
			}
		}
	case Orders:
		var s orders.Database
		if s, err = orders.Open(ctx, database); err == nil {
			p.Orders, p.DB, c = s, health.CheckerFunc(s.Ping), s
			if p.Keys, err = s.IdempotencyStore(); err != nil {
				err = errors.Join(err, s.Close())
			}
		}
	}
	if err != nil {
		return Parts{}, nil, err
	}
	return p, c, nil
}

// ParseDatabase splits a database URL into its kind, "sqlite" or
// "postgres", and what the store opens: the directory for SQLite, the URL
// itself for PostgreSQL. A path without a scheme is a SQLite directory.
func ParseDatabase(database string) (kind, where string, err error) {
	switch {
	case database == "":
		return "", "", errors.New("shop: no database: give a directory, sqlite:<dir> or a postgres:// URL")
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		if _, err := url.Parse(database); err != nil {
			return "", "", fmt.Errorf("shop: database %s: malformed URL", Redact(database))
		}
		return "postgres", database, nil
	case strings.HasPrefix(database, "sqlite:"):
		dir := strings.TrimPrefix(strings.TrimPrefix(database, "sqlite:"), "//")
		if dir == "" {
			return "", "", fmt.Errorf("shop: database %q: no directory after the sqlite: scheme", database)
		}
		return "sqlite", dir, nil
	case strings.Contains(database, "://"):
		scheme, _, _ := strings.Cut(database, "://")
		return "", "", fmt.Errorf("shop: database %s: unknown scheme %q (want sqlite: or postgres://)", Redact(database), scheme)
	}
	return "sqlite", database, nil
}

// Redact returns database with any password replaced by "xxxxx", for
// messages and logs.
func Redact(database string) string {
	u, err := url.Parse(database)
	if err != nil || u.User == nil {
		if err != nil && strings.Contains(database, "@") {
			return "<malformed URL>"
		}
		return database
	}
	return u.Redacted()
}
