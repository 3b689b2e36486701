package service_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pier-go/pier/service"
)

// A handler decodes its input with DecodeJSON and simply returns on failure: the
// client has already been told what is wrong.
func ExampleDecodeJSON() {
	type order struct {
		Item string `json:"item"`
		Qty  int    `json:"qty"`
	}
	createOrder := func(w http.ResponseWriter, r *http.Request) {
		var o order
		if err := service.DecodeJSON(w, r, &o); err != nil {
			return // a 4xx problem has been written
		}
		_ = service.WriteJSON(w, http.StatusCreated, o)
	}

	for _, body := range []string{
		`{"item": "tea", "qty": 2}`,
		`{"item": "tea", "qty": "two"}`,
		`{"item": "tea", "qty": 2, "colour": "green"}`,
	} {
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		createOrder(rec, req)
		fmt.Print(rec.Code, " ", rec.Header().Get("Content-Type"), " ", rec.Body)
	}
	// Output:
	// 201 application/json {"item":"tea","qty":2}
	// 400 application/problem+json {"title":"Bad Request","status":400,"detail":"field \"qty\": expected number (int), got string"}
	// 400 application/problem+json {"title":"Bad Request","status":400,"detail":"unknown field \"colour\""}
}

func ExampleWriteJSON() {
	rec := httptest.NewRecorder()
	err := service.WriteJSON(rec, http.StatusOK, map[string]any{"id": 42, "name": "Ada"})
	fmt.Println(err)
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Content-Length"))
	fmt.Print(rec.Body)

	// A value that cannot be encoded becomes a 500 problem, never half a body.
	rec = httptest.NewRecorder()
	err = service.WriteJSON(rec, http.StatusOK, map[string]any{"id": 42, "updates": make(chan int)})
	fmt.Println(err)
	fmt.Print(rec.Code, " ", rec.Body)
	// Output:
	// <nil>
	// 200 application/json 23
	// {"id":42,"name":"Ada"}
	// service: WriteJSON: json: unsupported type: chan int
	// 500 {"title":"Internal Server Error","status":500,"detail":"the response could not be encoded"}
}
