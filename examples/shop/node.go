package shop

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pier-go/pier/examples/shop/internal/pgdb"
	"github.com/pier-go/pier/examples/shop/internal/shopauth"
	"github.com/pier-go/pier/examples/shop/internal/storeurl"
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
	// OrdersSecret is the orders service's client secret: users issues
	// orders its own tokens (scope internal) for it, and orders asks with it.
	// Required for users and orders.
	OrdersSecret string
	// SweepInterval is how often orders looks for placements cut short.
	// Default SweepInterval.
	SweepInterval time.Duration
	// PasswordParams are argon2id's costs. Default users.DefaultPasswordParams.
	PasswordParams users.PasswordParams
	// PaymentOptions configure the simulated processor.
	PaymentOptions []payments.Option
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
	// Users and Orders are the handlers of the users and orders services,
	// nil for the others.
	Users  *users.Users
	Orders *orders.Orders

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
	if p.SweepInterval <= 0 {
		p.SweepInterval = SweepInterval
	}
	if p.DB != nil {
		opts = append([]service.Option{service.WithHealthCheck("db", p.DB)}, opts...)
	}
	if (name == Users || name == Orders) && p.OrdersSecret == "" {
		return nil, fmt.Errorf("shop: %s: no orders client secret", name)
	}
	n := &Node{}
	var gw *gateway.Gateway
	// The orders sweeper is made once orders is, which needs the Service.
	var startSweep, stopSweep func(context.Context) error
	switch name {
	case Gateway:
		opts = append(opts, service.WithHealthCheck("routes",
			health.CheckerFunc(func(ctx context.Context) error { return gw.Ready(ctx) })),
			// The routes' body limits and timeouts govern (docs/gateway.md).
			service.WithoutBodyLimit(), service.WithoutRequestTimeout())
	case Orders:
		opts = append(opts,
			service.WithOnStart(func(ctx context.Context) error { return startSweep(ctx) }),
			service.WithOnStop(func(ctx context.Context) error { return stopSweep(ctx) }))
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
		n.Users, err = users.New(svc, p.Users, p.Key, users.WithPasswordParams(p.PasswordParams),
			users.WithClients(users.Client{ID: Orders, Secret: p.OrdersSecret, Scopes: []string{shopauth.InternalScope}}))
		if n.Users != nil {
			n.closers = append(n.closers, n.Users)
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
		n.Orders, err = orders.New(svc, p.Orders, p.Keys, v, shopauth.ServiceTokens(svc.Client(), Orders, p.OrdersSecret))
		if err == nil {
			startSweep, stopSweep = n.Orders.Sweeper(p.SweepInterval)
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

// OpenParts opens the database of the service name at database, creating
// and migrating its tables, and returns the Parts that NewNode needs from it
// and what closes it. The gateway has no database: it gets empty Parts.
// database is a URL, as each service's Open reads it:
//
//	/var/lib/shop            SQLite: the file <service>.db in that directory
//	sqlite:/var/lib/shop     the same
//	postgres://host/db?...   PostgreSQL: the service's own schema in db
//
// Errors name the service and what failed, on one line, without a password.
func OpenParts(ctx context.Context, name, database string) (Parts, io.Closer, error) {
	var (
		p  Parts
		db interface {
			io.Closer
			Ping(ctx context.Context) error
		}
		err error
	)
	switch name {
	case Gateway:
		return Parts{}, io.NopCloser(nil), nil
	case Users:
		var s users.Database
		if s, err = users.Open(ctx, database); err == nil {
			p.Users, db = s, s
		}
	case Products:
		var s products.Database
		if s, err = products.Open(ctx, database); err == nil {
			p.Products, db = s, s
		}
	case Payments:
		var s payments.Database
		if s, err = payments.Open(ctx, database); err == nil {
			p.Payments, db = s, s
			p.Keys, err = s.IdempotencyStore()
		}
	case Orders:
		var s orders.Database
		if s, err = orders.Open(ctx, database); err == nil {
			p.Orders, db = s, s
			p.Keys, err = s.IdempotencyStore()
		}
	default:
		return Parts{}, nil, fmt.Errorf("shop: no service %q", name)
	}
	if err != nil {
		if db != nil {
			err = errors.Join(err, db.Close())
		}
		return Parts{}, nil, err
	}
	p.DB = health.CheckerFunc(db.Ping)
	return p, db, nil
}

// CheckDatabase reports whether database is a URL that OpenParts can open,
// without opening it.
func CheckDatabase(database string) error {
	_, err := storeurl.Parse(database, "check.db")
	return err
}

// Redact returns database with its password, if any, replaced by "xxxxx",
// for messages and logs.
func Redact(database string) string {
	if pgdb.IsURL(database) {
		return pgdb.Redact(database)
	}
	return database
}
