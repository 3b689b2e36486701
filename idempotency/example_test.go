package idempotency_test

import (
	"context"
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

// The caller is part of the key's scope: two users who happen to send the same
// key each get their own answer, and a keyed request without a verified caller
// is refused. Here a header stands in for the authentication middleware that
// verifies the caller (with pier's auth: auth.FromContext(r.Context()) and
// the claims' Subject).
func ExampleWithCallerScope() {
	type callerKey struct{}
	authenticate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if user := r.Header.Get("X-Verified-User"); user != "" {
				r = r.WithContext(context.WithValue(r.Context(), callerKey{}, user))
			}
			next.ServeHTTP(w, r)
		})
	}
	keys, err := idempotency.Middleware(nil, idempotency.WithCallerScope(func(r *http.Request) (string, bool) {
		user, ok := r.Context().Value(callerKey{}).(string)
		return user, ok
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	orders := 0
	h := authenticate(keys(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		orders++
		fmt.Fprintf(w, "order %d\n", orders)
	})))

	for _, user := range []string{"ada", "bob", "ada", ""} {
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"item":"tea"}`))
		req.Header.Set(idempotency.Header, "order-1")
		if user != "" {
			req.Header.Set("X-Verified-User", user)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		fmt.Printf("%-3s %d replayed=%q %s", user, w.Code, w.Header().Get(idempotency.ReplayedHeader), w.Body.String())
		if w.Code == http.StatusUnauthorized {
			fmt.Println()
		}
	}
	// Output:
	// ada 200 replayed="" order 1
	// bob 200 replayed="" order 2
	// ada 200 replayed="true" order 1
	//     401 replayed="" {"title":"Unauthorized","status":401,"detail":"a request with an Idempotency-Key needs an authenticated caller"}
}
