package consul_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/pier-go/pier/discovery"
	"github.com/pier-go/pier/discovery/consul"
	"github.com/pier-go/pier/discovery/discoverytest"
)

// fakeConsul is an HTTP server that answers the few agent endpoints the
// Registry uses, with blocking queries on the health endpoint, for the tests
// and benchmarks that need no real agent.
type fakeConsul struct {
	srv *httptest.Server

	mu      sync.Mutex
	index   uint64
	entries map[string][]*api.ServiceEntry
	changed chan struct{} // closed and replaced on every set
	queries []url.Values  // of the health endpoint
	down    bool          // answer 500 to the health endpoint
}

func newFakeConsul(tb testing.TB) *fakeConsul {
	f := &fakeConsul{index: 1, entries: make(map[string][]*api.ServiceEntry), changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health/service/{service}", f.health)
	mux.HandleFunc("PUT /v1/agent/service/register", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("PUT /v1/agent/service/deregister/{id}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("PUT /v1/agent/check/update/{id}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /v1/agent/service/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.AgentService{ID: r.PathValue("id")})
	})
	f.srv = httptest.NewServer(mux)
	tb.Cleanup(f.srv.Close)
	return f
}

// set replaces the instances of service and wakes the blocking queries.
func (f *fakeConsul) set(service string, entries ...*api.ServiceEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[service] = entries
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

// fail makes the health endpoint answer 500 (and wakes the queries it holds)
// until it is called with false. With false it also sets the index to index,
// as a new agent or a restored snapshot would.
func (f *fakeConsul) fail(down bool, index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if !down {
		f.index = index
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConsul) health(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	index, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	f.mu.Lock()
	f.queries = append(f.queries, q)
	for index >= f.index && !f.down {
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
	entries, at, down := f.entries[r.PathValue("service")], f.index, f.down
	f.mu.Unlock()
	if down {
		http.Error(w, "rpc error making call: No cluster leader", http.StatusInternalServerError)
		return
	}
	if entries == nil {
		entries = []*api.ServiceEntry{}
	}
	w.Header().Set("X-Consul-Index", strconv.FormatUint(at, 10))
	_ = json.NewEncoder(w).Encode(entries)
}

func (f *fakeConsul) lastQuery() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[len(f.queries)-1]
}

func fakeEntry(id, serviceAddr, nodeAddr string, port int) *api.ServiceEntry {
	return &api.ServiceEntry{
		Node: &api.Node{Node: "node-1", Address: nodeAddr},
		Service: &api.AgentService{ID: id, Service: "users", Address: serviceAddr, Port: port,
			Tags: []string{"t-" + id}, Meta: map[string]string{"id": id}},
	}
}

// fakeClient returns a client of srv whose idle connections close when tb ends.
func fakeClient(tb testing.TB, srv *httptest.Server) *api.Client {
	tb.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	c, err := api.NewClient(&api.Config{Address: strings.TrimPrefix(srv.URL, "http://"), Transport: tr})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestResolveConvertsHealthEntries(t *testing.T) {
	t.Parallel()
	fake := newFakeConsul(t)
	fake.set("users",
		fakeEntry("users-1", "10.0.0.1", "192.168.0.1", 8080),
		fakeEntry("users-2", "", "192.168.0.2", 8081), // no service address: the node's
		fakeEntry("users-3", "fd00::3", "192.168.0.3", 8082),
	)
	r := newRegistry(t, fakeClient(t, fake.srv))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	got, err := r.Resolve(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	want := []discovery.Instance{
		{ID: "users-1", Service: "users", Addr: "10.0.0.1:8080", Tags: []string{"t-users-1"}, Meta: map[string]string{"id": "users-1"}},
		{ID: "users-2", Service: "users", Addr: "192.168.0.2:8081", Tags: []string{"t-users-2"}, Meta: map[string]string{"id": "users-2"}},
		{ID: "users-3", Service: "users", Addr: "[fd00::3]:8082", Tags: []string{"t-users-3"}, Meta: map[string]string{"id": "users-3"}},
	}
	got = slices.SortedFunc(slices.Values(got), func(a, b discovery.Instance) int { return strings.Compare(a.ID, b.ID) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Resolve (-want +got):\n%s", diff)
	}

	// The watch wakes on a change, and an empty set is ErrNoInstances.
	fake.set("users")
	discoverytest.WaitResolve(t, r, "users", "the emptied service has no instances", discoverytest.Has())
}

func TestResolveQueriesPassingInstancesWithTagsAndDatacenter(t *testing.T) {
	t.Parallel()
	fake := newFakeConsul(t)
	fake.set("users", fakeEntry("users-1", "10.0.0.1", "", 8080))
	r := newRegistry(t, fakeClient(t, fake.srv), consul.WithTags("canary", "v2"), consul.WithDatacenter("dc2"))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := r.Resolve(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	q := fake.lastQuery()
	if _, ok := q["passing"]; !ok || !slices.Equal(q["tag"], []string{"canary", "v2"}) || q.Get("dc") != "dc2" {
		t.Errorf("health query %v, want passing, tag=canary&tag=v2 and dc=dc2", q)
	}
}

// TestStalenessDropsAsSoonAsTheAgentAnswersAgain: after an outage the watch
// must ask for the current set at once rather than block on its old index,
// which kept Staleness above 0 for a whole wait time, and on an agent whose
// index restarted lower, until that agent's index passed the old one.
func TestStalenessDropsAsSoonAsTheAgentAnswersAgain(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		index uint64 // the agent's index when it answers again
	}{
		{"same index", 1000},
		{"index restarted lower", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFakeConsul(t)
			fake.fail(false, 1000)
			fake.set("users", fakeEntry("users-1", "10.0.0.1", "", 8080))
			// A 10-minute wait: only a query that does not block can end
			// the staleness within the test.
			r := newRegistry(t, fakeClient(t, fake.srv), consul.WithWaitTime(consul.MaxWaitTime),
				consul.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
			want := discoverytest.Has(discovery.Instance{Addr: "10.0.0.1:8080"})
			discoverytest.WaitResolve(t, r, "users", "the instance resolves", want)

			fake.fail(true, 0)
			waitUntil(t, "Staleness > 0 while the agent fails", func() error {
				if s, _ := r.Staleness("users"); s == 0 {
					return errors.New("Staleness = 0")
				}
				return nil
			})
			fake.fail(false, tt.index)
			waitUntil(t, "Staleness back to 0 once the agent answers", func() error {
				if s, _ := r.Staleness("users"); s != 0 {
					return fmt.Errorf("Staleness = %v", s)
				}
				return nil
			})
			fake.set("users", fakeEntry("users-2", "10.0.0.2", "", 8080))
			discoverytest.WaitResolve(t, r, "users", "the watch blocks on the new index and sees a change",
				discoverytest.Has(discovery.Instance{Addr: "10.0.0.2:8080"}))
		})
	}
}

func TestResolveDoesNotAllocate(t *testing.T) {
	fake := newFakeConsul(t)
	fake.set("users", fakeEntry("users-1", "10.0.0.1", "", 8080))
	r := newRegistry(t, fakeClient(t, fake.srv))
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = r.Resolve(ctx, "users") }); n != 0 {
		t.Errorf("Resolve from the cache: %v allocations, want 0", n)
	}
}

func BenchmarkResolve(b *testing.B) {
	fake := newFakeConsul(b)
	fake.set("users",
		fakeEntry("users-1", "10.0.0.1", "", 8080),
		fakeEntry("users-2", "10.0.0.2", "", 8080),
		fakeEntry("users-3", "10.0.0.3", "", 8080))
	r := newRegistry(b, fakeClient(b, fake.srv))
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "users"); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Resolve(ctx, "users"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Resolve(ctx, "users"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
