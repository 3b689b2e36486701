package service

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pier-go/pier/internal/bodylimit"
	"github.com/pier-go/pier/problem"
)

// TestDecodeJSONLimitedBody checks that DecodeJSON relies on the limit that the
// BodyLimit middleware put on the body, whether smaller or larger than the default.
func TestDecodeJSONLimitedBody(t *testing.T) {
	t.Parallel()
	big := `{"name":"` + strings.Repeat("a", int(DefaultBodyLimit)) + `"}`
	tests := []struct {
		name       string
		limit      int64
		body       string
		wantStatus int
		wantDetail string
	}{
		{"under a small limit", 64, `{"name":"Ada"}`, http.StatusOK, ""},
		{"over a small limit", 16, `{"name":"Ada Lovelace, Countess of Lovelace"}`,
			http.StatusRequestEntityTooLarge, "request body exceeds the limit of 16 bytes"},
		{"trailing data over a small limit", 16, `{"name":"Ada"}` + strings.Repeat(" ", 32),
			http.StatusRequestEntityTooLarge, "request body exceeds the limit of 16 bytes"},
		{"over the default under a larger limit", 2 * DefaultBodyLimit, big, http.StatusOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/people", strings.NewReader(tc.body))
			// As the BodyLimit middleware does.
			req.Body = &bodylimit.Body{ReadCloser: http.MaxBytesReader(rec, req.Body, tc.limit), Limit: tc.limit}

			var v struct {
				Name string `json:"name"`
			}
			err := DecodeJSON(rec, req, &v)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus == http.StatusOK {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				return
			}
			var returned *problem.Problem
			if !errors.As(err, &returned) || returned.Status != tc.wantStatus || returned.Detail != tc.wantDetail {
				t.Errorf("DecodeJSON = %#v, want a %d *problem.Problem with detail %q", err, tc.wantStatus, tc.wantDetail)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			var written problem.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &written); err != nil {
				t.Fatal(err)
			}
			if written.Detail != tc.wantDetail {
				t.Errorf("detail = %q, want %q", written.Detail, tc.wantDetail)
			}
		})
	}
}
