package discovery_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pier-go/pier/discovery"
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
	if _, err := discovery.StaticFromEnv(); err == nil || !strings.HasPrefix(err.Error(), discovery.StaticEnv+": ") {
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
