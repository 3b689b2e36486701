package discovery

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Memory is a [Registry] held in memory: the registry of a single process, of
// tests, and of several services run in one binary. Every registered instance
// is healthy until it is deregistered. Make one with [NewMemory]; it is safe for
// concurrent use.
type Memory struct {
	// resolved maps each service to its instances for Resolve: replaced on every
	// change, so Resolve, which runs on every request from every core, reads it
	// without a lock.
	resolved atomic.Pointer[map[string][]Instance]

	mu       sync.Mutex // guards the rest
	services map[string]*memService
	owner    map[string]string // instance ID -> service, to move an ID between services
}

type memService struct {
	instances []Instance // sorted by ID; replaced, never modified, on change
}

// NewMemory returns an empty in-memory registry.
func NewMemory() *Memory {
	m := &Memory{services: make(map[string]*memService), owner: make(map[string]string)}
	m.resolved.Store(&map[string][]Instance{})
	return m
}

// Register adds in, or replaces the instance with the same ID (in another
// service too: the ID moves). Resolve sees the change at once. It returns an
// error only for an invalid instance.
func (m *Memory) Register(ctx context.Context, in Instance) error {
	if err := in.Validate(); err != nil {
		return fmt.Errorf("discovery: register: %w", err)
	}
	in.Tags = slices.Clone(in.Tags) // the caller may reuse its slices and maps
	in.Meta = maps.Clone(in.Meta)
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.owner[in.ID]; ok && prev != in.Service {
		m.remove(prev, in.ID)
	}
	m.owner[in.ID] = in.Service
	s := m.service(in.Service)
	next := make([]Instance, 0, len(s.instances)+1)
	for _, old := range s.instances {
		if old.ID != in.ID {
			next = append(next, old)
		}
	}
	next = append(next, in)
	slices.SortFunc(next, func(a, b Instance) int { return cmp.Compare(a.ID, b.ID) })
	m.publish(s, next)
	return nil
}

// Deregister removes the instance with in's ID, from whatever service holds
// it. An unknown ID is not an error.
func (m *Memory) Deregister(ctx context.Context, in Instance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if svc, ok := m.owner[in.ID]; ok {
		m.remove(svc, in.ID)
		delete(m.owner, in.ID)
	}
	return nil
}

// Resolve returns the instances of service, sorted by ID, without copying or
// allocating; the slice must not be modified. It returns an error wrapping
// [ErrNoInstances] when there is none.
func (m *Memory) Resolve(ctx context.Context, service string) ([]Instance, error) {
	instances := (*m.resolved.Load())[service]
	if len(instances) == 0 {
		return nil, noInstances(service)
	}
	return instances, nil
}

// service returns the entry for name, making it; m.mu must be held for writing.
func (m *Memory) service(name string) *memService {
	s := m.services[name]
	if s == nil {
		s = &memService{}
		m.services[name] = s
	}
	return s
}

// remove takes the instance id out of service svc; m.mu must be held.
func (m *Memory) remove(svc, id string) {
	s := m.services[svc]
	if s == nil {
		return
	}
	next := slices.DeleteFunc(slices.Clone(s.instances), func(in Instance) bool { return in.ID == id })
	if len(next) != len(s.instances) {
		m.publish(s, next)
	}
}

// publish makes instances the current set of s; m.mu must be held.
func (m *Memory) publish(s *memService, instances []Instance) {
	s.instances = instances
	resolved := make(map[string][]Instance, len(m.services))
	for name, svc := range m.services {
		if len(svc.instances) > 0 {
			resolved[name] = svc.instances
		}
	}
	m.resolved.Store(&resolved)
}
