package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// ErrNoInstances is returned, wrapped, by [Resolver.Resolve] when a service has no
// healthy instance. Match it with errors.Is.
var ErrNoInstances = errors.New("discovery: no healthy instances")

// Instance is one running copy of a service, reachable at Addr.
type Instance struct {
	// ID identifies the instance among all instances of all services in a
	// registry. It must not be empty.
	ID string
	// Service is the name callers use to reach the instance: the host in
	// http://users/path. It must be a DNS label: 1 to 63 lowercase letters, digits
	// and inner hyphens.
	Service string
	// Addr is where the instance listens, as host:port with a non-zero port.
	Addr string
	// Tags are free-form labels, such as "canary" or "v2", that resolvers can
	// filter on.
	Tags []string
	// Meta holds key/value metadata, such as "version".
	Meta map[string]string
}

// Validate reports whether in can be registered: an ID, a service name that is a
// DNS label, and an address of the form host:port. Registries call it in
// Register; the error names the instance and the field, and carries no
// package prefix, so that the caller's own prefix is the only one
// (`consul: register: instance "users-1": address ...`).
func (in Instance) Validate() error {
	if in.ID == "" {
		return fmt.Errorf("instance of %q: empty ID", in.Service)
	}
	if err := ValidateServiceName(in.Service); err != nil {
		return fmt.Errorf("instance %q: %w", in.ID, err)
	}
	host, port, err := net.SplitHostPort(in.Addr)
	if err != nil {
		return fmt.Errorf("instance %q: %w", in.ID, err) // net's error names the address
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 || host == "" {
		return fmt.Errorf("instance %q: address %q: want host:port with a port from 1 to 65535", in.ID, in.Addr)
	}
	return nil
}

// ValidateServiceName reports whether name can be a service name: the host of
// http://name/path and a name in Consul and DNS, so 1 to 63 lowercase letters,
// digits and hyphens, not starting or ending with a hyphen.
func ValidateServiceName(name string) error {
	ok := len(name) >= 1 && len(name) <= 63 && name[0] != '-' && name[len(name)-1] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("invalid service name %q: want 1 to 63 lowercase letters, digits and inner hyphens", name)
	}
	return nil
}

// Registrar puts instances in a registry and takes them out.
type Registrar interface {
	// Register adds in to the registry, or updates it when an instance with the
	// same ID is there. It returns an error when in is invalid or the registry
	// cannot be reached; it never logs and drops a failure.
	Register(ctx context.Context, in Instance) error
	// Deregister removes the instance with in's ID. Removing an instance that is
	// not there is not an error.
	Deregister(ctx context.Context, in Instance) error
}

// Resolver finds the healthy instances of a service.
type Resolver interface {
	// Resolve returns the healthy instances of service, or an error wrapping
	// [ErrNoInstances] when there is none. It is cheap: implementations serve it
	// from memory kept current in the background, not with a remote call per
	// request. The returned slice and the instances in it are shared and must not
	// be modified.
	Resolve(ctx context.Context, service string) ([]Instance, error)
}

// Registry is a [Registrar] and a [Resolver] over the same registry.
type Registry interface {
	Registrar
	Resolver
}

// noInstances returns the error Resolve returns for a service with no
// instance.
func noInstances(service string) error {
	return fmt.Errorf("%w for %q", ErrNoInstances, service)
}
