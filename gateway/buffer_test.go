package gateway_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/pier-go/pier/gateway"
)

// TestLargeBodiesIntactThroughPooledBuffers: responses larger than the copy
// buffer, each different, proxied at once, arrive byte for byte: a buffer
// lent to one response is never written by another.
func TestLargeBodiesIntactThroughPooledBuffers(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("blobs", "/blobs", "blobs")})
	body := func(n int) []byte { // 100 KiB of bytes that depend on n
		return bytes.Repeat([]byte(fmt.Sprintf("%07d.", n)), 100<<10/8)
	}
	e.up["blobs"].set(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		_, _ = w.Write(body(n))
	})
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				resp, err := e.front.Client().Get(e.front.URL + "/blobs/x?n=" + strconv.Itoa(n))
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if want := body(n); err != nil || !bytes.Equal(got, want) {
					errs <- fmt.Errorf("response %d: %d bytes (err %v), sha256 %s; want %d bytes, sha256 %s",
						n, len(got), err, sum(got), len(want), sum(want))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// TestProxyAllocatedACopyBufferPerResponse: httputil.ReverseProxy without a
// buffer pool allocates 32 KiB for every response it copies, on top of what
// the rest of a request allocates: over 50 KiB for a whole proxied request
// (client, gateway and upstream, all in this process), against about 18 KiB
// with the gateway's pool (30 KiB under the race detector, which makes
// sync.Pool drop some of what it is given). The bound sits between the two.
func TestProxyAllocatedACopyBufferPerResponse(t *testing.T) {
	e := newEnv(t, []gateway.Route{open("users", "/users", "users")})
	get := func() {
		resp, err := e.front.Client().Get(e.front.URL + "/users/42")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	for range 20 { // connections, pools and caches warm
		get()
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		get()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per >= 40<<10 {
		t.Fatalf("%d bytes allocated per proxied request, want less than 40 KiB", per)
	}
}
