package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/health"
	"github.com/pier-go/pier/service"
)

// flakyRegistry is a memory registry whose Register fails while down is set:
// a registry that is unreachable, then back.
type flakyRegistry struct {
	*discovery.Memory
	down     atomic.Bool
	attempts atomic.Int32
}

func (f *flakyRegistry) Register(ctx context.Context, in discovery.Instance) error {
	f.attempts.Add(1)
	if f.down.Load() {
		return errors.New("registry unreachable")
	}
	return f.Memory.Register(ctx, in)
}

func resolved(r discovery.Resolver, name string) []discovery.Instance {
	got, _ := r.Resolve(context.Background(), name)
	return got
}

func TestRegistersAfterStartAndDeregistersOnStop(t *testing.T) {
	t.Parallel()
	reg := discovery.NewMemory()
	r := start(t, nil, service.WithRegistry(reg), service.WithVersion("1.2.3"),
		service.WithInstanceID("test-1"), service.WithInstanceTags("canary"))
	waitUntil(t, "the instance is registered", func() bool { return len(resolved(reg, "test")) == 1 })
	in := resolved(reg, "test")[0]
	want := strings.TrimPrefix(r.url, "http://")
	if in.ID != "test-1" || in.Addr != want || in.Meta["version"] != "1.2.3" || len(in.Tags) != 1 || in.Tags[0] != "canary" {
		t.Fatalf("registered %+v, want ID test-1 at %s with version 1.2.3 and tag canary", in, want)
	}
	r.cancel()
	if _, err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if got := resolved(reg, "test"); len(got) != 0 {
		t.Fatalf("still registered after Run returned: %v", got)
	}
}

func TestRegistryDownAtStartIsRetried(t *testing.T) {
	t.Parallel()
	reg := &flakyRegistry{Memory: discovery.NewMemory()}
	reg.down.Store(true)
	r := start(t, nil, service.WithRegistry(reg), service.WithAdminAddr("127.0.0.1:0"))
	admin := "http://" + r.svc.AdminAddr().String()
	waitUntil(t, "two attempts failed", func() bool { return reg.attempts.Load() >= 2 })

	// Not fatal: the service serves and is ready; /health says why it is not
	// registered.
	if code, _, body := get(t, noKeepAlive(), r.url+service.ReadyPath); code != http.StatusOK {
		t.Fatalf("ready while the registry is down = %d %s, want 200", code, body)
	}
	// Checks are cached for a second, so /health catches up with the failures.
	// The error is on the admin listener's /health; the public one says
	// "warn" alone.
	var check *health.Result
	waitUntil(t, "/health shows the registry's error", func() bool {
		_, _, body := get(t, noKeepAlive(), admin+service.HealthPath)
		var rep health.Report
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatal(err)
		}
		for i := range rep.Checks {
			if rep.Checks[i].Name == service.RegistryCheck {
				check = &rep.Checks[i]
			}
		}
		return check != nil && strings.Contains(check.Error, "unreachable")
	})
	if check.Status != health.StatusWarn || check.Critical {
		t.Fatalf("registry check = %+v, want a non-critical warning", check)
	}
	if l := r.logs.find(t, "registration failed; retrying", ""); len(l) == 0 || l[0]["level"] != "WARN" {
		t.Fatalf("registration failures logged as %v, want WARN lines", l)
	}

	reg.down.Store(false)
	waitUntil(t, "the instance is registered once the registry is back", func() bool {
		return len(resolved(reg, "test")) == 1
	})
	if _, _, body := get(t, noKeepAlive(), r.url+service.HealthPath); strings.Contains(body, "unreachable") ||
		!strings.Contains(body, `{"name":"registry","status":"warn"}`) {
		t.Fatalf("public /health = %s, want the registry check's status without its error", body)
	}
	waitUntil(t, "the registry check passes", func() bool {
		_, _, body := get(t, noKeepAlive(), r.url+service.HealthPath)
		return strings.Contains(body, `{"name":"registry","status":"pass"}`)
	})
}

func TestRegistersOnlyOnceReady(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	dbErr := errors.New("db down")
	db := health.CheckerFunc(func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return dbErr
	})
	reg := &flakyRegistry{Memory: discovery.NewMemory()}
	r := start(t, nil, service.WithRegistry(reg), service.WithHealthCheck("db", db))
	waitUntil(t, "registration is waiting on readiness", func() bool {
		return len(r.logs.find(t, "registration failed; retrying", "")) >= 2
	})
	if n := reg.attempts.Load(); n != 0 || len(resolved(reg, "test")) != 0 {
		t.Fatalf("an unready instance was registered (%d attempts)", n)
	}
	mu.Lock()
	dbErr = nil
	mu.Unlock()
	waitUntil(t, "registered once ready", func() bool { return len(resolved(reg, "test")) == 1 })
}

func TestBadAdvertiseAddressFailsRun(t *testing.T) {
	t.Parallel()
	svc, err := service.New("test", service.WithAddr("127.0.0.1:0"), service.WithLogger(newLogger(&logBuffer{})),
		service.WithRegistry(discovery.NewMemory()), service.WithAdvertiseAddr("no-port"))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no-port") {
		t.Fatalf("Run = %v, want the bad address named", err)
	}
}
