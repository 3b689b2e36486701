package problem_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/pier-go/pier/problem"
)

func ExampleWrite() {
	getUser := func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, problem.Problem{
			Type:   "https://example.com/problems/no-such-user",
			Status: http.StatusNotFound,
			Detail: "no user with id " + r.PathValue("id"),
			Extra:  map[string]any{"user_id": r.PathValue("id")},
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", getUser)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/users/42", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body)
	// Output:
	// 404 application/problem+json
	// {"type":"https://example.com/problems/no-such-user","title":"Not Found","status":404,"detail":"no user with id 42","user_id":"42"}
}

func ExampleStatus() {
	h := func(w http.ResponseWriter, r *http.Request) {
		problem.Status(w, r, http.StatusConflict, "email taken")
	}
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodPost, "/users", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body)
	// Output:
	// 409 application/problem+json
	// {"title":"Conflict","status":409,"detail":"email taken"}
}

func ExampleProblem_Error() {
	lookup := func(id string) error {
		return &problem.Problem{Status: http.StatusNotFound, Detail: "no user " + id}
	}
	err := lookup("42")
	var p *problem.Problem
	if errors.As(err, &p) {
		fmt.Println(p.Status, err)
	}
	// Output:
	// 404 Not Found: no user 42
}
