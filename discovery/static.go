package discovery

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// StaticEnv is the environment variable [StaticFromEnv] reads.
const StaticEnv = "PIER_SERVICES"

// Static is a [Registry] of fixed addresses, for setups without a registry: a
// docker-compose file, a laptop, a test. Its instances never change and are
// always considered healthy; Register and Deregister do nothing, since the
// configuration, not the instances, says where services are. Make one with
// [NewStatic], [ParseStatic] or [StaticFromEnv]; it is safe for concurrent use.
type Static struct {
	services map[string][]Instance
}

// NewStatic returns a registry that resolves each service in services to the
// given addresses (host:port). Each instance's ID is "service@addr". It returns
// an error for an invalid service name or address, or an address given twice
// for one service.
func NewStatic(services map[string][]string) (*Static, error) {
	s, err := newStatic(services)
	if err != nil {
		return nil, fmt.Errorf("discovery: static: %w", err)
	}
	return s, nil
}

// newStatic is NewStatic with errors that carry no prefix.
func newStatic(services map[string][]string) (*Static, error) {
	s := &Static{services: make(map[string][]Instance, len(services))}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		seen := make(map[string]bool)
		for _, addr := range services[name] {
			in := Instance{ID: name + "@" + addr, Service: name, Addr: addr}
			if err := in.Validate(); err != nil {
				return nil, err // it names the instance, "service@addr"
			}
			if seen[addr] {
				return nil, fmt.Errorf("%q lists %s twice", name, addr)
			}
			seen[addr] = true
			s.services[name] = append(s.services[name], in)
		}
	}
	return s, nil
}

// ParseStatic returns a registry from text of the form
//
//	users=10.0.0.1:8080,10.0.0.2:8080;orders=orders.internal:9000
//
// services separated by semicolons, each a name, "=" and addresses separated
// by commas. Spaces around the parts are ignored, and so is an empty text. A
// service named twice is an error.
func ParseStatic(text string) (*Static, error) {
	s, err := parseStatic(text)
	if err != nil {
		return nil, fmt.Errorf("discovery: static: %w", err)
	}
	return s, nil
}

// parseStatic is ParseStatic with errors that carry no prefix.
func parseStatic(text string) (*Static, error) {
	services := make(map[string][]string)
	for part := range strings.SplitSeq(text, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addrs, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want service=host:port[,host:port...]", part)
		}
		if _, dup := services[name]; dup {
			return nil, fmt.Errorf("service %q given twice", name)
		}
		list := []string{}
		for addr := range strings.SplitSeq(addrs, ",") {
			if addr = strings.TrimSpace(addr); addr != "" {
				list = append(list, addr)
			}
		}
		services[name] = list
	}
	return newStatic(services)
}

// StaticFromEnv returns [ParseStatic] of the environment variable PIER_SERVICES
// ([StaticEnv]); the error names the variable.
func StaticFromEnv() (*Static, error) {
	s, err := parseStatic(os.Getenv(StaticEnv))
	if err != nil {
		return nil, fmt.Errorf("discovery: static: %s: %w", StaticEnv, err)
	}
	return s, nil
}

// Register does nothing and returns nil: a static registry's instances come from
// its configuration.
func (s *Static) Register(ctx context.Context, in Instance) error { return nil }

// Deregister does nothing and returns nil.
func (s *Static) Deregister(ctx context.Context, in Instance) error { return nil }

// Resolve returns the configured instances of service, without allocating; the
// slice must not be modified. It returns an error wrapping [ErrNoInstances] for
// a service that is not configured.
func (s *Static) Resolve(ctx context.Context, service string) ([]Instance, error) {
	if in := s.services[service]; len(in) > 0 {
		return in, nil
	}
	return nil, noInstances(service)
}
