// Package process runs one of the shop's services as a process of its own,
// configured by flags and environment variables: the commands
// examples/cmd/users, products, payments, orders and gateway are each a
// main around Main.
//
// Every flag has an environment variable (-addr and PIER_ADDR, -registry and
// PIER_REGISTRY, -database and DATABASE_URL, ...; Usage lists them) and a
// flag given on the command line wins over its variable. The registry is
// static (a fixed list in -services, PIER_SERVICES), consul (the agent at
// -consul, CONSUL_HTTP_ADDR) or dns (Kubernetes headless Services, through
// service.WithResolver). Bad configuration is one line on stderr naming the
// flag or variable at fault, and a non-zero exit code.
package process
