package discovery_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/discoverytest"
)

func TestParseStatic(t *testing.T) {
	tests := []struct {
		text    string
		want    map[string][]string // service -> addresses
		wantErr string
	}{
		{text: "", want: map[string][]string{}},
		{text: " users = 10.0.0.1:80 , 10.0.0.2:80 ; orders=o:9000 ;", want: map[string][]string{
			"users": {"10.0.0.1:80", "10.0.0.2:80"}, "orders": {"o:9000"}}},
		{text: "[::1]=x", wantErr: "invalid service name"},
		{text: "users", wantErr: "want service=host:port"},
		{text: "=10.0.0.1:80", wantErr: "want service=host:port"},
		{text: "users=10.0.0.1", wantErr: "missing port"},
		{text: "users=10.0.0.1:0", wantErr: "port from 1 to 65535"},
		{text: "users=a:1,a:1", wantErr: "twice"},
		{text: "users=a:1;users=b:1", wantErr: "given twice"},
		{text: "Users=a:1", wantErr: "invalid service name"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			reg, err := discovery.ParseStatic(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStatic(%q) error = %v, want one containing %q", tt.text, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for svc, addrs := range tt.want {
				got, err := reg.Resolve(context.Background(), svc)
				if err != nil || len(got) != len(addrs) {
					t.Fatalf("Resolve(%s) = %v, %v; want %v", svc, got, err, addrs)
				}
				for i, a := range addrs {
					if got[i].Addr != a || got[i].Service != svc || got[i].ID != svc+"@"+a {
						t.Errorf("instance %d = %+v, want %s at %s", i, got[i], svc, a)
					}
				}
			}
			if _, err := reg.Resolve(context.Background(), "missing"); !errors.Is(err, discovery.ErrNoInstances) {
				t.Fatalf("unknown service: %v, want ErrNoInstances", err)
			}
		})
	}
}

func TestStaticFromEnv(t *testing.T) {
	t.Setenv(discovery.StaticEnv, "users=10.0.0.1:80")
	reg, err := discovery.StaticFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := reg.Resolve(context.Background(), "users"); err != nil || got[0].Addr != "10.0.0.1:80" {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
	t.Setenv(discovery.StaticEnv, "users")
	if _, err := discovery.StaticFromEnv(); err == nil || !strings.HasPrefix(err.Error(), "discovery: static: "+discovery.StaticEnv+": ") {
		t.Fatalf("StaticFromEnv error = %v, want it to name %s", err, discovery.StaticEnv)
	}
}

func TestStaticRegisterIsANoOp(t *testing.T) {
	t.Parallel()
	reg, err := discovery.NewStatic(map[string][]string{"users": {"10.0.0.1:80"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := discovery.Instance{ID: "x", Service: "users", Addr: "10.0.0.9:80"}
	if err := reg.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := reg.Deregister(ctx, discovery.Instance{ID: "users@10.0.0.1:80"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Resolve(ctx, "users"); len(got) != 1 || got[0].Addr != "10.0.0.1:80" {
		t.Fatalf("static instances changed: %v", got)
	}
}

// staticSource is the configuration behind a Static registry, edited by
// Register and Deregister as a deployment would edit PIER_SERVICES: each change
// builds a new Static, and Resolve asks the current one. It lets Static run the
// conformance suite, as the DNS tests run it by editing a zone.
type staticSource struct {
	mu  sync.Mutex
	set map[string]discovery.Instance // by ID
	cur atomic.Pointer[discovery.Static]
}

func newStaticSource(*testing.T) discovery.Registry {
	s := &staticSource{set: make(map[string]discovery.Instance)}
	_ = s.rebuild() // an empty configuration cannot fail
	return s
}

// rebuild makes a Static of the current set; s.mu must be held.
func (s *staticSource) rebuild() error {
	services := make(map[string][]string)
	for _, in := range s.set {
		services[in.Service] = append(services[in.Service], in.Addr)
	}
	reg, err := discovery.NewStatic(services)
	if err != nil {
		return err
	}
	s.cur.Store(reg)
	return nil
}

func (s *staticSource) Register(ctx context.Context, in discovery.Instance) error {
	if err := in.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set[in.ID] = in
	return s.rebuild()
}

func (s *staticSource) Deregister(ctx context.Context, in discovery.Instance) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.set, in.ID)
	return s.rebuild()
}

func (s *staticSource) Resolve(ctx context.Context, service string) ([]discovery.Instance, error) {
	return s.cur.Load().Resolve(ctx, service)
}

func TestStaticConformance(t *testing.T) {
	t.Parallel()
	// Static instances are named service@addr and carry no tags or metadata.
	discoverytest.Run(t, discoverytest.Suite{New: newStaticSource})
}
