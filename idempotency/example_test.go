package idempotency_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/pier-go/pier/idempotency"
	"github.com/pier-go/pier/service"
)

// A payment route that must not charge twice: the client sends an
// Idempotency-Key, and its retry gets the first answer instead of a second
// charge.
func ExampleMiddleware() {
	charges := 0
	store, err := idempotency.NewMemoryStore(idempotency.WithRetention(time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, err := idempotency.Middleware(store)
	if err != nil {
		fmt.Println(err)
		return
	}
	svc, err := service.New("payments",
		service.WithLogger(slog.New(slog.DiscardHandler)),
		service.WithMiddleware(keys),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	svc.HandleFunc("POST /charges", func(w http.ResponseWriter, r *http.Request) {
		charges++
		_ = service.WriteJSON(w, http.StatusCreated, map[string]int{"charge": charges})
	})
	srv := httptest.NewServer(svc)
	defer srv.Close()

	for _, key := range []string{"8e03978e-40d5", "8e03978e-40d5", "a second payment"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/charges", strings.NewReader(`{"amount":100}`))
		req.Header.Set(idempotency.Header, key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		fmt.Printf("%s replayed=%q %s", resp.Status, resp.Header.Get(idempotency.ReplayedHeader), body)
	}
	fmt.Println("charges:", charges)
	// Output:
	// 201 Created replayed="" {"charge":1}
	// 201 Created replayed="true" {"charge":1}
	// 201 Created replayed="" {"charge":2}
	// charges: 2
}

// Two instances of a service share one store, so a retry that lands on the
// other instance replays the answer of the first. (A MemoryStore serves
// instances in one process; across processes, implement Store over a shared
// database.)
func ExampleNewMemoryStore() {
	store, err := idempotency.NewMemoryStore(
		idempotency.WithMaxKeys(50_000),
		idempotency.WithRetention(time.Hour),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, err := idempotency.Middleware(store)
	if err != nil {
		fmt.Println(err)
		return
	}
	var instances []*httptest.Server
	for _, name := range []string{"a", "b"} {
		svc, err := service.New("orders",
			service.WithLogger(slog.New(slog.DiscardHandler)),
			service.WithMiddleware(keys),
		)
		if err != nil {
			fmt.Println(err)
			return
		}
		svc.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
			_ = service.WriteJSON(w, http.StatusCreated, map[string]string{"created_by": name})
		})
		srv := httptest.NewServer(svc)
		defer srv.Close()
		instances = append(instances, srv)
	}

	for _, srv := range instances { // the first try on a, the retry on b
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader(`{"item":"tea"}`))
		req.Header.Set(idempotency.Header, "order-7")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		fmt.Printf("%s replayed=%q %s", resp.Status, resp.Header.Get(idempotency.ReplayedHeader), body)
	}
	// Output:
	// 201 Created replayed="" {"created_by":"a"}
	// 201 Created replayed="true" {"created_by":"a"}
}
