package resilience_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"

	"github.com/pier-go/pier/resilience"
)

const hedgeDelay = 10 * time.Millisecond

func TestHedgeSlowFirstAttempt(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	firstCanceled := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			<-r.Context().Done() // slow: outlives the hedge delay until the hedge wins
			close(firstCanceled)
			return
		}
		fmt.Fprint(w, "hedge")
	}))
	var hedges atomic.Int64
	rt := resilience.Transport(newTransport(t), resilience.NewHedgeBuilder(hedgeDelay).
		OnHedge(func(failsafe.ExecutionEvent[*http.Response]) { hedges.Add(1) }).Build())
	code, body := get(t, rt, srv.URL)
	if code != 200 || body != "hedge" {
		t.Fatalf("got %d %q, want the hedge's 200", code, body)
	}
	recv(t, firstCanceled, "the losing attempt's cancellation")
	if attempts.Load() != 2 || hedges.Load() != 1 {
		t.Fatalf("%d attempts and %d hedges, want 2 and 1", attempts.Load(), hedges.Load())
	}
}

func TestHedgeNeverForNonIdempotent(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		arrived <- struct{}{}
		<-release
	}))
	var hedges atomic.Int64
	rt := resilience.Transport(newTransport(t), fastRetry().Build(), resilience.NewHedgeBuilder(hedgeDelay).
		OnHedge(func(failsafe.ExecutionEvent[*http.Response]) { hedges.Add(1) }).Build())
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("order"))
	errc := make(chan error, 1)
	go func() {
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	recv(t, arrived, "the attempt")
	// A hedge would start hedgeDelay after the first attempt; give it many times that.
	select {
	case <-arrived:
		t.Error("a POST was hedged")
	case <-time.After(20 * hedgeDelay):
	}
	close(release)
	if err := recv(t, errc, "the call"); err != nil {
		t.Fatal(err)
	}
	if attempts.Load() != 1 || hedges.Load() != 0 {
		t.Fatalf("%d attempts and %d hedges, want 1 and 0", attempts.Load(), hedges.Load())
	}
}
