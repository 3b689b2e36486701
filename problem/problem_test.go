package problem

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/pier-go/pier/internal/requestid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		method string
		p      Problem
		ctxID  string
		status int
		body   map[string]any // nil: no body
	}{
		{
			name: "defaults filled", method: "GET", p: Problem{Detail: "boom"}, ctxID: "req-1",
			status: 500,
			body:   map[string]any{"title": "Internal Server Error", "status": 500.0, "detail": "boom", "request_id": "req-1"},
		},
		{
			name: "extension members", method: "GET", ctxID: "",
			p: Problem{Status: 429, Type: "https://pier.dev/problems/rate-limit", Extra: map[string]any{
				"retry_after_s": 3, "status": "ignored: clashes with a member"}},
			status: 429,
			body: map[string]any{"type": "https://pier.dev/problems/rate-limit", "title": "Too Many Requests",
				"status": 429.0, "retry_after_s": 3.0},
		},
		{
			name: "explicit request ID wins", method: "GET", ctxID: "from-ctx",
			p:      Problem{Status: 404, RequestID: "explicit"},
			status: 404,
			body:   map[string]any{"title": "Not Found", "status": 404.0, "request_id": "explicit"},
		},
		{
			name: "unencodable extra", method: "GET", ctxID: "req-2",
			p:      Problem{Status: 400, Extra: map[string]any{"bad": math.NaN()}},
			status: 500,
			body: map[string]any{"title": "Internal Server Error", "status": 500.0,
				"detail": "the error response could not be encoded", "request_id": "req-2"},
		},
		{name: "HEAD has no body", method: "HEAD", p: Problem{Status: 503}, status: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(requestid.NewContext(context.Background(), tt.ctxID), tt.method, "/", nil)
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Encoding", "gzip") // set by a handler before it failed
			Write(rec, req, tt.p)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			h := rec.Header()
			if h.Get("Content-Type") != ContentType || h.Get("Cache-Control") != "no-store" || h.Get("Content-Encoding") != "" {
				t.Fatalf("headers = %v", h)
			}
			if tt.body == nil {
				if rec.Body.Len() != 0 {
					t.Fatalf("body = %q, want none", rec.Body)
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.body, got); diff != "" {
				t.Fatalf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestError(t *testing.T) {
	if got := (&Problem{Status: http.StatusNotFound, Detail: "no user 42"}).Error(); got != "Not Found: no user 42" {
		t.Fatalf("Error() = %q", got)
	}
	if got := (&Problem{}).Error(); got != "Internal Server Error" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestWriteTraceID(t *testing.T) {
	traceID := [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	withTrace := func() context.Context {
		ctx := requestid.NewContext(context.Background(), "req-1")
		requestid.SetTraceID(ctx, traceID)
		return ctx
	}
	tests := []struct {
		name string
		ctx  context.Context
		p    Problem
		want string // trace_id in the body; "" for none
	}{
		{"recorded by the server", withTrace(), Problem{}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"explicit wins", withTrace(), Problem{TraceID: "explicit"}, "explicit"},
		{"request ID only", requestid.NewContext(context.Background(), "req-1"), Problem{}, ""},
		{"nothing recorded", context.Background(), Problem{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, httptest.NewRequestWithContext(tt.ctx, "GET", "/", nil), tt.p)
			var got struct {
				TraceID *string `json:"trace_id"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == "" && got.TraceID != nil:
				t.Fatalf("trace_id = %q, want none", *got.TraceID)
			case tt.want != "" && (got.TraceID == nil || *got.TraceID != tt.want):
				t.Fatalf("trace_id = %v, want %q (body %s)", got.TraceID, tt.want, rec.Body)
			}
		})
	}
}

func TestWriteKeepsMembers(t *testing.T) {
	p := Problem{Type: "https://example.com/probs/out-of-stock", Title: "Out of stock",
		Status: 409, Detail: "no tea left", Instance: "/orders/1", RequestID: "given", TraceID: "t"}
	rec := httptest.NewRecorder()
	Write(rec, httptest.NewRequest("GET", "/orders/1", nil), p)
	var got Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Fatalf("problem (-want +got):\n%s", diff)
	}
}

func TestWriteNilRequest(t *testing.T) {
	rec := httptest.NewRecorder()
	Status(rec, nil, http.StatusInternalServerError, "x")
	if rec.Code != 500 || rec.Body.Len() == 0 {
		t.Fatalf("got %d %q", rec.Code, rec.Body)
	}
}
