package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/pier-go/pier/discovery"
)

// callTimeout bounds each call a maintenance loop makes to the agent, so that
// a connection that died silently cannot stop the loop for good.
const callTimeout = 10 * time.Second

// Register registers in with the local agent, or updates the registration of
// in.ID, and from then on maintains it: it confirms every re-register interval
// that the agent still has it, and registers it again when the agent has lost
// it ([WithReregisterInterval]); with [WithTTL], it marks its check passing
// every TTL/3.
//
// The instance gets an HTTP check on http://<Addr><health path> run by Consul
// ([WithHealthPath], [WithCheckInterval], [WithCheckTimeout]), or a TTL check,
// and is removed by Consul after its check has been critical for
// [WithDeregisterCriticalAfter]. The check starts passing: a pier service
// registers only once it is ready, so the instance is resolvable at once, and
// the first run of the check (within one interval) confirms it or takes it out.
//
// Register returns an error, prefixed `consul: register`, when in is
// invalid, the agent refuses it or cannot be reached before ctx ends, or the
// Registry is closed; it never logs and drops one. After a failed Register,
// a previous registration of the same ID stays maintained as before.
func (r *Registry) Register(ctx context.Context, in discovery.Instance) error {
	if err := in.Validate(); err != nil {
		return fmt.Errorf("consul: register: %w", err) // it names the instance
	}
	if r.closed.Load() {
		return fmt.Errorf("consul: register %q: registry closed", in.ID)
	}
	reg, err := r.registration(in)
	if err != nil {
		return fmt.Errorf("consul: register %q: %w", in.ID, err)
	}
	unlock, err := r.lockID(ctx, in.ID)
	if err != nil {
		return fmt.Errorf("consul: register %q: %w", in.ID, err)
	}
	defer unlock()
	// The loop of the previous registration stops first, so that it cannot
	// register the old definition again over this one.
	prev := r.stopLoop(in.ID)
	if err := r.register(ctx, reg); err != nil {
		if prev != nil {
			r.startLoop(prev)
		}
		return fmt.Errorf("consul: register %q: %w", in.ID, err)
	}
	if !r.startLoop(reg) {
		return fmt.Errorf("consul: register %q: registry closed", in.ID)
	}
	return nil
}

// Deregister stops maintaining the instance with in's ID and removes it from
// the local agent. An instance the agent does not know is not an error. It
// works after Close too. When it returns an error (the agent cannot be reached
// before ctx ends), the instance is no longer maintained but may still be
// registered: its check, or [WithDeregisterCriticalAfter], takes it out.
func (r *Registry) Deregister(ctx context.Context, in discovery.Instance) error {
	if in.ID == "" {
		return errors.New(`consul: deregister "": empty ID`)
	}
	unlock, err := r.lockID(ctx, in.ID)
	if err != nil {
		return fmt.Errorf("consul: deregister %q: %w", in.ID, err)
	}
	defer unlock()
	r.stopLoop(in.ID)
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := r.client.Agent().ServiceDeregisterOpts(in.ID, q); err != nil && !isNotFound(err) {
		return fmt.Errorf("consul: deregister %q: %w", in.ID, err)
	}
	return nil
}

// registration builds the agent's registration of in, which is valid.
func (r *Registry) registration(in discovery.Instance) (*api.AgentServiceRegistration, error) {
	host, portText, err := net.SplitHostPort(in.Addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, err
	}
	check := &api.AgentServiceCheck{
		CheckID: checkID(in.ID),
		Status:  api.HealthPassing,
	}
	if !r.cfg.noDeregisterCritical {
		check.DeregisterCriticalServiceAfter = r.cfg.deregisterCriticalAfter.String()
	}
	if r.cfg.ttl > 0 {
		check.Name = "pier heartbeat"
		check.Notes = "marked passing by the registering process every TTL/3"
		check.TTL = r.cfg.ttl.String()
	} else {
		check.Name = "pier readiness"
		check.HTTP = "http://" + in.Addr + r.cfg.healthPath
		check.Method = "GET"
		check.Interval = r.cfg.checkInterval.String()
		check.Timeout = r.cfg.checkTimeout.String()
	}
	return &api.AgentServiceRegistration{
		ID:      in.ID,
		Name:    in.Service,
		Address: host,
		Port:    port,
		Tags:    slices.Clone(in.Tags), // the loop keeps them: the caller's may change
		Meta:    maps.Clone(in.Meta),
		Check:   check,
	}, nil
}

// checkID is the ID of the check of the instance id: Consul's own name for the
// first check of a service, set explicitly so that the TTL marks can name it.
func checkID(id string) string { return "service:" + id }

// register sends reg to the agent, replacing the checks of an earlier
// registration of the same ID.
func (r *Registry) register(ctx context.Context, reg *api.AgentServiceRegistration) error {
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	return r.client.Agent().ServiceRegisterOpts(reg, opts)
}

// loop is the maintenance goroutine of one registered instance.
type loop struct {
	reg    *api.AgentServiceRegistration
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has returned
}

// startLoop starts maintaining reg, and reports false when the registry is
// closed. The caller holds the lock of reg.ID, and no loop runs for it.
func (r *Registry) startLoop(reg *api.AgentServiceRegistration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return false
	}
	ctx, cancel := context.WithCancel(context.Background()) // the loop owns it; stopLoop and Close cancel it
	l := &loop{reg: reg, cancel: cancel, done: make(chan struct{})}
	r.loops[reg.ID] = l
	r.wg.Add(1)
	go r.maintain(ctx, l)
	return true
}

// stopLoop stops the loop of id, if any, waits for it, and returns the
// registration it maintained. The caller holds the lock of id.
func (r *Registry) stopLoop(id string) *api.AgentServiceRegistration {
	r.mu.Lock()
	l := r.loops[id]
	delete(r.loops, id)
	r.mu.Unlock()
	if l == nil {
		return nil
	}
	l.cancel()
	<-l.done
	return l.reg
}

// maintain confirms l.reg with the agent every re-register interval and, in
// TTL mode, marks its check passing every TTL/3, until ctx ends.
func (r *Registry) maintain(ctx context.Context, l *loop) {
	defer r.wg.Done()
	defer close(l.done)
	confirm := time.NewTicker(r.cfg.reregisterInterval)
	defer confirm.Stop()
	var beat <-chan time.Time
	if r.cfg.ttl > 0 {
		t := time.NewTicker(r.cfg.ttl / 3)
		defer t.Stop()
		beat = t.C
	}
	failures := 0 // calls that failed in a row: the first is logged at Warn
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-confirm.C:
			err = r.confirm(ctx, l.reg)
		case <-beat:
			err = r.beat(ctx, l.reg)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelWarn
			}
			r.logger.Log(ctx, level, "consul: cannot maintain the registration; retrying",
				slog.String("id", l.reg.ID), slog.Int("failures", failures), slog.Any("err", err))
		case failures > 0:
			r.logger.Info("consul: registration maintained again",
				slog.String("id", l.reg.ID), slog.Int("failures", failures))
			failures = 0
		}
	}
}

// confirm asks the agent for reg and registers it again when the agent has
// lost it.
func (r *Registry) confirm(ctx context.Context, reg *api.AgentServiceRegistration) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, _, err := r.client.Agent().Service(reg.ID, (&api.QueryOptions{}).WithContext(ctx))
	if isNotFound(err) {
		return r.reregister(ctx, reg, "the agent lost the instance")
	}
	return err
}

// beat marks the TTL check of reg passing, and registers reg again when the
// agent no longer knows the check.
func (r *Registry) beat(ctx context.Context, reg *api.AgentServiceRegistration) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err := r.client.Agent().UpdateTTLOpts(checkID(reg.ID), "", api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx))
	if isNotFound(err) {
		return r.reregister(ctx, reg, "the agent lost the TTL check")
	}
	return err
}

// reregister registers reg again, and logs it.
func (r *Registry) reregister(ctx context.Context, reg *api.AgentServiceRegistration, why string) error {
	if err := r.register(ctx, reg); err != nil {
		return fmt.Errorf("register again (%s): %w", why, err)
	}
	r.logger.Info("consul: registered again", slog.String("id", reg.ID),
		slog.String("service", reg.Name), slog.String("reason", why))
	return nil
}

// idLock serializes the Register and Deregister calls of one instance ID.
type idLock struct {
	sem   chan struct{} // holds a token while locked
	users int           // holders and waiters; guarded by Registry.mu
}

// lockID locks id, or fails when ctx ends first, and returns its unlock.
func (r *Registry) lockID(ctx context.Context, id string) (unlock func(), err error) {
	r.mu.Lock()
	l := r.locks[id]
	if l == nil {
		l = &idLock{sem: make(chan struct{}, 1)}
		r.locks[id] = l
	}
	l.users++
	r.mu.Unlock()
	release := func() {
		r.mu.Lock()
		if l.users--; l.users == 0 {
			delete(r.locks, id)
		}
		r.mu.Unlock()
	}
	select {
	case l.sem <- struct{}{}:
		return func() { <-l.sem; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
