package process

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/consul"
	"github.com/pier-go/pier/discovery/dns"
	"github.com/pier-go/pier/examples/shop"
	"github.com/pier-go/pier/examples/shop/payments"
	"github.com/pier-go/pier/examples/shop/users"
	"github.com/pier-go/pier/gateway"
	"github.com/pier-go/pier/service"
)

// The registries a process can use (-registry, PIER_REGISTRY).
const (
	// Static resolves services from the fixed list of -services
	// (PIER_SERVICES) and registers nowhere: Compose files, laptops, tests.
	Static = "static"
	// Consul registers the instance with the Consul agent of -consul
	// (CONSUL_HTTP_ADDR) and resolves services through it.
	Consul = "consul"
	// DNS registers nowhere and resolves services from DNS, as Kubernetes
	// serves headless Services (the platform lists the ready pods).
	DNS = "dns"
)

// Config is one process's configuration. Parse reads it from flags and the
// environment, a flag winning over its variable.
type Config struct {
	Service   string        // the service it runs: shop.Users, shop.Products, ...
	Addr      string        // -addr, PIER_ADDR: the listen address; default ":8080"
	Advertise string        // -advertise, PIER_ADVERTISE: the address registered; default the bound one
	AdminAddr string        // -admin-addr, PIER_ADMIN_ADDR: a separate metrics listener; default none
	Registry  string        // -registry, PIER_REGISTRY: Static (default), Consul or DNS
	Consul    string        // -consul, CONSUL_HTTP_ADDR: the Consul agent; default 127.0.0.1:8500
	Services  string        // -services, PIER_SERVICES: name=host:port,...;name=... for Static
	DNSDomain string        // -dns-domain, PIER_DNS_DOMAIN: the domain DNS names are completed with
	Database  string        // -database, DATABASE_URL: sqlite:<dir> or postgres://; default sqlite:<Data>
	Data      string        // -data, PIER_DATA: the data directory (SQLite files, the signing key)
	LogFormat string        // -log-format, LOG_FORMAT: json, text or tint
	Drain     time.Duration // -drain, PIER_DRAIN: how long a stopping instance serves on while callers move away; default 5 s, 0 none
	Shutdown  time.Duration // -shutdown-timeout, PIER_SHUTDOWN_TIMEOUT: the bound on in-flight requests at stop; default 15 s

	SigningKey    string        // users: -signing-key, PIER_SIGNING_KEY; default <Data>/users-signing-key.pem
	OrdersSecret  string        // users and orders: -orders-secret, PIER_ORDERS_SECRET; required
	AdminPassword string        // users: -admin-password, PIER_ADMIN_PASSWORD: seed the demo users
	Seed          bool          // products: -seed, PIER_SEED: seed the demo catalogue when empty
	PaymentsDelay time.Duration // payments: -payments-delay, PIER_PAYMENTS_DELAY: how long each charge and refund waits; default 0
	PaymentsFail  float64       // payments: -payments-fail, PIER_PAYMENTS_FAIL: the share, 0 to 1, of charges and refunds failing with 503; default 0
	Routes        string        // gateway: -routes, PIER_ROUTES: a routes file; default the shop's routes

	// Probe asks the instance listening on Addr whether it is ready, instead
	// of running one (-probe, no variable): for container health checks in
	// images without a shell or curl.
	Probe bool
}

// callees are the services name calls, which a static list must name.
func callees(name string) []string {
	switch name {
	case shop.Products, shop.Payments:
		return []string{shop.Users}
	case shop.Orders:
		return []string{shop.Users, shop.Products, shop.Payments}
	case shop.Gateway:
		return []string{shop.Users, shop.Products, shop.Orders}
	}
	return nil
}

// envOf returns the environment variable of a flag.
func envOf(flagName string) string {
	switch flagName {
	case "consul":
		return "CONSUL_HTTP_ADDR"
	case "services":
		return discovery.StaticEnv
	case "database":
		return "DATABASE_URL"
	case "log-format":
		return "LOG_FORMAT"
	}
	return "PIER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flagSet declares name's flags on a new FlagSet bound to c.
func flagSet(name string, c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed once, on one line, by Main
	fs.StringVar(&c.Addr, "addr", service.DefaultAddr, "listen address")
	fs.StringVar(&c.Advertise, "advertise", "", "host:port other services reach this instance at (default: the bound address)")
	fs.StringVar(&c.AdminAddr, "admin-addr", "", "serve /metrics on this separate address (default: on -addr)")
	fs.StringVar(&c.Registry, "registry", Static, "service registry: static, consul or dns")
	fs.StringVar(&c.Consul, "consul", "", "Consul agent address (default 127.0.0.1:8500)")
	fs.StringVar(&c.Services, "services", "", "static registry: users=host:port,...;products=...")
	fs.StringVar(&c.DNSDomain, "dns-domain", "", "dns registry: domain appended to service names, such as shop.svc.cluster.local (default: the resolv.conf search list)")
	fs.DurationVar(&c.Drain, "drain", service.DefaultDrainDelay, "how long a stopping instance keeps serving while callers move away")
	fs.DurationVar(&c.Shutdown, "shutdown-timeout", service.DefaultShutdownTimeout, "bound on in-flight requests at stop")
	fs.BoolVar(&c.Probe, "probe", false, "check that the instance on -addr is ready (GET /health/ready) and exit 0 if it is, 1 if not")
	fs.StringVar(&c.LogFormat, "log-format", "", "log format: json, text or tint (default: tint on a terminal, json otherwise)")
	if name != shop.Gateway {
		fs.StringVar(&c.Data, "data", "", "data directory: SQLite files and, for users, the signing key")
		fs.StringVar(&c.Database, "database", "", "database URL: sqlite:<dir> or postgres://... (default sqlite:<-data>)")
	}
	if name == shop.Users || name == shop.Orders {
		fs.StringVar(&c.OrdersSecret, "orders-secret", "", "the orders service's client secret, the same for users and orders (required)")
	}
	switch name {
	case shop.Users:
		fs.StringVar(&c.SigningKey, "signing-key", "", "Ed25519 signing key, PKCS #8 PEM, created when missing (default <-data>/"+users.KeyFile+")")
		fs.StringVar(&c.AdminPassword, "admin-password", "", "when set, seed Alice, Bob and admin@example.com with this password, each if missing")
	case shop.Products:
		fs.BoolVar(&c.Seed, "seed", false, "seed the demo catalogue when it is empty")
	case shop.Payments:
		fs.DurationVar(&c.PaymentsDelay, "payments-delay", 0, "how long each charge takes")
		fs.Float64Var(&c.PaymentsFail, "payments-fail", 0, "the share of charges that fail with 503, 0 to 1")
	case shop.Gateway:
		fs.StringVar(&c.Routes, "routes", "", "routes file, YAML or JSON (default: the shop's routes)")
	}
	return fs
}

// Usage writes the usage of the command that runs name to w.
func Usage(w io.Writer, name string) {
	fs := flagSet(name, &Config{})
	fmt.Fprintf(w, "usage: %s [flags]\n\nRuns the shop's %s service as a process of its own. Every flag can be set\nby the environment variable shown; a flag wins over its variable.\n\n", name, name)
	fs.SetOutput(w)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "probe" {
			f.Usage = fmt.Sprintf("%s [$%s]", f.Usage, envOf(f.Name))
		}
	})
	fs.PrintDefaults()
}

// Parse reads the configuration of the service name from args and from the
// environment through lookup (os.LookupEnv), a flag winning over its
// variable, and checks it. Its errors are one line and name the flag or
// variable at fault. -h gives flag.ErrHelp.
func Parse(name string, args []string, lookup func(string) (string, bool)) (Config, error) {
	if !slices.Contains(shop.ServiceNames(), name) {
		return Config{}, fmt.Errorf("no service %q", name)
	}
	c := Config{Service: name}
	fs := flagSet(name, &c)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	source := map[string]string{} // flag -> where its value came from, for errors
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		source[f.Name] = "-" + f.Name
		if given[f.Name] || f.Name == "probe" {
			return
		}
		env := envOf(f.Name)
		v, ok := lookup(env)
		if !ok || v == "" {
			return
		}
		source[f.Name] = env
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: not a valid %s", env, v, kindOf(f)))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.check(source)
}

func kindOf(f *flag.Flag) string {
	switch f.Value.(flag.Getter).Get().(type) {
	case time.Duration:
		return "duration (such as 5s)"
	case bool:
		return "boolean"
	case float64:
		return "number"
	}
	return "value"
}

// check validates c; source names where each flag's value came from.
func (c *Config) check(source map[string]string) error {
	switch c.Registry {
	case Static:
		st, err := discovery.ParseStatic(c.Services)
		if err != nil {
			return fmt.Errorf("%s: %w", source["services"], err)
		}
		for _, callee := range callees(c.Service) {
			if _, err := st.Resolve(context.Background(), callee); err != nil {
				return fmt.Errorf("%s: no address for %q, which %s calls (with -registry static)", source["services"], callee, c.Service)
			}
		}
	case Consul, DNS:
	default:
		return fmt.Errorf("%s %q: unknown registry (want static, consul or dns)", source["registry"], c.Registry)
	}
	switch c.LogFormat {
	case "", "json", "text", "tint":
	default:
		return fmt.Errorf("%s %q: unknown log format (want json, text or tint)", source["log-format"], c.LogFormat)
	}
	if c.Drain < 0 || c.Shutdown < 0 {
		return errors.New("-drain and -shutdown-timeout must not be negative")
	}
	if c.PaymentsFail < 0 || c.PaymentsFail > 1 {
		return fmt.Errorf("%s %v: not between 0 and 1", source["payments-fail"], c.PaymentsFail)
	}
	if c.Service == shop.Gateway {
		return nil
	}
	if (c.Service == shop.Users || c.Service == shop.Orders) && c.OrdersSecret == "" {
		return errors.New("no -orders-secret (PIER_ORDERS_SECRET): users and orders need the same secret, with which orders gets its own tokens")
	}
	if c.Database == "" {
		if c.Data == "" {
			return errors.New("no database: set -data (PIER_DATA) to a directory or -database (DATABASE_URL) to a URL")
		}
		c.Database = "sqlite:" + c.Data
	}
	if err := shop.CheckDatabase(c.Database); err != nil {
		return fmt.Errorf("%s: %w", source["database"], err)
	}
	if c.Service == shop.Users && c.SigningKey == "" {
		if c.Data == "" {
			return errors.New("no signing key: set -signing-key (PIER_SIGNING_KEY) or -data (PIER_DATA)")
		}
		c.SigningKey = filepath.Join(c.Data, users.KeyFile)
	}
	return nil
}

// Main runs the service name as a process: it parses args and the process
// environment, runs until ctx ends, and returns the exit code: 0 after a
// clean stop (or -h), 2 for a bad flag or variable, 1 for any other failure.
// A failure is written to stderr as one line, "<name>: <what is wrong>".
func Main(ctx context.Context, name string, args []string, stderr io.Writer) int {
	cfg, err := Parse(name, args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		Usage(stderr, name)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, oneLine(name, err))
		return 2
	}
	if cfg.Probe {
		err = Probe(ctx, cfg.Addr)
	} else {
		err = Run(ctx, cfg, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, oneLine(name, err))
		return 1
	}
	return 0
}

// Probe asks the instance listening on addr (a listen address such as
// ":8080", read as a loopback address when its host is empty or
// unspecified) whether it is ready: nil when GET /health/ready answers 200
// within 5 s.
func Probe(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("probe: -addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/health/ready"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s", url, resp.Status)
	}
	return nil
}

// oneLine prefixes err's message with the command's name and folds the
// lines of joined errors into one.
func oneLine(name string, err error) string {
	msg := strings.ReplaceAll(err.Error(), ":\n", ": ")
	return name + ": " + strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
}

// Run runs the service cfg describes until ctx ends, then stops it
// gracefully. Configuration that turns out wrong (a database that cannot
// be opened, a malformed routes file, a bad signing key) is an error before
// anything is logged; the Service's logs go to logOut.
func Run(ctx context.Context, cfg Config, logOut io.Writer) (err error) {
	var logOpts []service.LogOption
	if cfg.LogFormat != "" {
		logOpts = append(logOpts, service.WithLogFormat(cfg.LogFormat))
	}
	log, err := service.NewLogger(append(logOpts, service.WithLogOutput(logOut))...)
	if err != nil {
		return err
	}
	var closers []io.Closer
	defer func() {
		for _, c := range slices.Backward(closers) {
			err = errors.Join(err, c.Close())
		}
	}()

	opts := []service.Option{
		service.WithAddr(cfg.Addr),
		service.WithLogger(log),
		service.WithShutdown(cfg.Drain, cfg.Shutdown),
	}
	if cfg.Drain == 0 {
		opts = append(opts, service.WithoutDrainDelay())
	}
	if cfg.Advertise != "" {
		opts = append(opts, service.WithAdvertiseAddr(cfg.Advertise))
	}
	if cfg.AdminAddr != "" {
		opts = append(opts, service.WithAdminAddr(cfg.AdminAddr))
	}
	switch cfg.Registry {
	case Static:
		st, err := discovery.ParseStatic(cfg.Services)
		if err != nil {
			return err
		}
		opts = append(opts, service.WithRegistry(st))
	case Consul:
		conf := api.DefaultConfig() // CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL, ... as Consul's own tools read them
		if cfg.Consul != "" {
			conf.Address = cfg.Consul
		}
		client, err := api.NewClient(conf)
		if err != nil {
			return fmt.Errorf("consul %s: %w", conf.Address, err)
		}
		reg, err := consul.New(client, consul.WithLogger(log))
		if err != nil {
			return err
		}
		closers = append(closers, reg)
		opts = append(opts, service.WithRegistry(reg))
	case DNS:
		var dopts []dns.Option
		if cfg.DNSDomain != "" {
			dopts = append(dopts, dns.WithDomain(cfg.DNSDomain))
		}
		r, err := dns.New(dopts...)
		if err != nil {
			return fmt.Errorf("-dns-domain: %w", err)
		}
		closers = append(closers, r)
		opts = append(opts, service.WithResolver(r))
	}

	parts, db, err := shop.OpenParts(ctx, cfg.Service, cfg.Database)
	if err != nil {
		if where := shop.Redact(cfg.Database); !strings.Contains(err.Error(), where) {
			return fmt.Errorf("database %s: %w", where, err)
		}
		return fmt.Errorf("database: %w", err) // the store's error names it
	}
	closers = append(closers, db)
	parts.Logger = log
	parts.OrdersSecret = cfg.OrdersSecret
	if err := prepare(ctx, cfg, &parts); err != nil {
		return err
	}
	node, err := shop.NewNode(cfg.Service, parts, opts...)
	if err != nil {
		return err
	}
	return node.Run(ctx)
}

// prepare adds what only one service needs to p: the signing key and the
// demo users, the demo catalogue, the processor's behaviour, the routes.
func prepare(ctx context.Context, cfg Config, p *shop.Parts) error {
	var err error
	switch cfg.Service {
	case shop.Users:
		if p.Key, err = users.LoadOrCreateKeyFile(cfg.SigningKey); err != nil {
			return fmt.Errorf("-signing-key: %w", err)
		}
		if cfg.AdminPassword != "" {
			if _, err := shop.SeedUsers(ctx, p.Users, users.DefaultPasswordParams, cfg.AdminPassword); err != nil {
				return err
			}
		}
	case shop.Products:
		if cfg.Seed {
			if _, err := shop.SeedCatalogue(ctx, p.Products); err != nil {
				return err
			}
		}
	case shop.Payments:
		p.PaymentOptions = []payments.Option{payments.WithDelay(cfg.PaymentsDelay), payments.WithFailureRate(cfg.PaymentsFail)}
	case shop.Gateway:
		if cfg.Routes == "" {
			return nil
		}
		data, err := os.ReadFile(cfg.Routes)
		if err != nil {
			return fmt.Errorf("-routes: %w", err)
		}
		if p.Routes, err = gateway.LoadRoutes(cfg.Routes, data); err != nil {
			return fmt.Errorf("-routes: %w", err)
		}
	}
	return nil
}
