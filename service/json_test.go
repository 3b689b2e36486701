package service_test

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pier-go/pier/internal/requestid"
	"github.com/pier-go/pier/problem"
	"github.com/pier-go/pier/service"
)

type address struct {
	City string `json:"city"`
	Zip  int    `json:"zip"`
}

type person struct {
	Name    string   `json:"name"`
	Age     int      `json:"age"`
	Admin   bool     `json:"admin"`
	Tags    []string `json:"tags"`
	Address address  `json:"address"`
	// Pets is a slice of an anonymous struct, as handlers often declare
	// their request bodies.
	Pets []struct {
		Name string `json:"name"`
	} `json:"pets"`
}

// decodeCase is one request to a handler that decodes a person.
type decodeCase struct {
	name        string
	contentType string // "-" sends no Content-Type
	body        string
	wantStatus  int
	wantDetail  string // for failures
	want        person // for successes
}

var decodeCases = []decodeCase{
	{
		name:       "success",
		body:       `{"name":"Ada","age":36,"admin":true,"tags":["x"],"address":{"city":"London","zip":1}}`,
		wantStatus: http.StatusOK,
		want:       person{Name: "Ada", Age: 36, Admin: true, Tags: []string{"x"}, Address: address{City: "London", Zip: 1}},
	},
	{
		name:        "success without Content-Type",
		contentType: "-",
		body:        `{"name":"Ada"}`,
		wantStatus:  http.StatusOK,
		want:        person{Name: "Ada"},
	},
	{
		name:        "success with charset",
		contentType: "application/json; charset=utf-8",
		body:        `{"name":"Ada"}`,
		wantStatus:  http.StatusOK,
		want:        person{Name: "Ada"},
	},
	{
		name:        "success with +json type",
		contentType: "application/merge-patch+json",
		body:        `{"name":"Ada"}`,
		wantStatus:  http.StatusOK,
		want:        person{Name: "Ada"},
	},
	{
		name:        "success with upper-case type",
		contentType: "Application/JSON",
		body:        `{"name":"Ada"}`,
		wantStatus:  http.StatusOK,
		want:        person{Name: "Ada"},
	},
	{
		name:       "success with trailing white space",
		body:       "{\"name\":\"Ada\"}\n\t \n",
		wantStatus: http.StatusOK,
		want:       person{Name: "Ada"},
	},
	{
		name:       "malformed JSON",
		body:       `{"name": "Ada", "age": }`,
		wantStatus: http.StatusBadRequest,
		wantDetail: "malformed JSON at byte offset 24: invalid character '}' looking for beginning of value",
	},
	{
		name:       "not JSON at all",
		body:       `name=Ada`,
		wantStatus: http.StatusBadRequest,
		wantDetail: "malformed JSON at byte offset 2: invalid character 'a' in literal null (expecting 'u')",
	},
	{
		name:       "truncated body",
		body:       `{"name": "Ada"`,
		wantStatus: http.StatusBadRequest,
		wantDetail: "malformed JSON: unexpected end of body",
	},
	{
		name:       "wrong field type",
		body:       `{"age": "36"}`,
		wantStatus: http.StatusBadRequest,
		wantDetail: `field "age": expected number (int), got string`,
	},
	{
		name:       "wrong nested field type",
		body:       `{"address": {"zip": true}}`,
		wantStatus: http.StatusBadRequest,
		wantDetail: `field "address.zip": expected number (int), got boolean`,
	},
	{
		name:       "fraction for an int",
		body:       `{"age": 36.5}`,
		wantStatus: http.StatusBadRequest,
		wantDetail: `field "age": expected number (int), got number 36.5`,
	},
	{
		name:       "string for a slice of an anonymous struct",
		body:       `{"pets": "Rex"}`,
		wantStatus: http.StatusBadRequest,
		wantDetail: `field "pets": expected array, got string`,
	},
	{
		name:       "object for a slice",
		body:       `{"tags": {}}`,
		wantStatus: http.StatusBadRequest,
		wantDetail: `field "tags": expected array ([]string), got object`,
	},
	{
		name:       "number for a string",
		body:       `{"name": 7}`,
		wantStatus: http.StatusBadRequest,
		wantDetail: `field "name": expected string, got number`,
	},
	{
		name:       "wrong top-level type",
		body:       `[1, 2]`,
		wantStatus: http.StatusBadRequest,
		wantDetail: `request body: expected object (service_test.person), got array`,
	},
	{
		name:       "unknown field",
		body:       `{"name": "Ada", "role": "admin"}`,
		wantStatus: http.StatusBadRequest,
		wantDetail: `unknown field "role"`,
	},
	{
		name:       "empty body",
		body:       ``,
		wantStatus: http.StatusBadRequest,
		wantDetail: "request body is empty",
	},
	{
		name:       "white space only",
		body:       " \n ",
		wantStatus: http.StatusBadRequest,
		wantDetail: "request body is empty",
	},
	{
		name:       "second value",
		body:       `{"name": "Ada"} {"name": "Bob"}`,
		wantStatus: http.StatusBadRequest,
		wantDetail: "request body must contain a single JSON value",
	},
	{
		name:       "trailing garbage",
		body:       `{"name": "Ada"}garbage`,
		wantStatus: http.StatusBadRequest,
		wantDetail: "request body must contain a single JSON value",
	},
	{
		name:       "oversized body",
		body:       `{"name": "` + strings.Repeat("a", int(service.DefaultBodyLimit)) + `"}`,
		wantStatus: http.StatusRequestEntityTooLarge,
		wantDetail: "request body exceeds the limit of " + strconv.FormatInt(service.DefaultBodyLimit, 10) + " bytes",
	},
	{
		name:       "oversized trailing white space",
		body:       `{"name": "Ada"}` + strings.Repeat(" ", int(service.DefaultBodyLimit)),
		wantStatus: http.StatusRequestEntityTooLarge,
		wantDetail: "request body exceeds the limit of " + strconv.FormatInt(service.DefaultBodyLimit, 10) + " bytes",
	},
	{
		name:        "wrong Content-Type",
		contentType: "text/plain",
		body:        `{"name": "Ada"}`,
		wantStatus:  http.StatusUnsupportedMediaType,
		wantDetail:  `Content-Type "text/plain" is not supported: send application/json`,
	},
	{
		name:        "form Content-Type",
		contentType: "application/x-www-form-urlencoded",
		body:        `name=Ada`,
		wantStatus:  http.StatusUnsupportedMediaType,
		wantDetail:  `Content-Type "application/x-www-form-urlencoded" is not supported: send application/json`,
	},
	{
		name:        "unparsable Content-Type",
		contentType: "json",
		body:        `{"name": "Ada"}`,
		wantStatus:  http.StatusUnsupportedMediaType,
		wantDetail:  `Content-Type "json" is not supported: send application/json`,
	},
}

// decodeHandler decodes a person and echoes it; on failure it checks that the
// returned error is the problem that was written and reports it in a header.
func decodeHandler(t *testing.T) http.HandlerFunc {
	t.Helper()
	return func(w http.ResponseWriter, r *http.Request) {
		var p person
		err := service.DecodeJSON(w, r, &p)
		if err != nil {
			var prob *problem.Problem
			if !errors.As(err, &prob) {
				t.Errorf("DecodeJSON error %T (%v) is not a *Problem", err, err)
			}
			return
		}
		if err := service.WriteJSON(w, http.StatusOK, p); err != nil {
			t.Errorf("WriteJSON: %v", err)
		}
	}
}

func newDecodeRequest(t *testing.T, url string, tc decodeCase) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(tc.body))
	if err != nil {
		t.Fatal(err)
	}
	switch tc.contentType {
	case "":
		req.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		req.Header.Set("Content-Type", tc.contentType)
	}
	return req
}

// checkDecodeAnswer asserts the status, the Content-Type and the body of an answer.
func checkDecodeAnswer(t *testing.T, tc decodeCase, status int, header http.Header, body []byte) {
	t.Helper()
	if status != tc.wantStatus {
		t.Errorf("status = %d, want %d; body %s", status, tc.wantStatus, body)
	}
	if tc.wantStatus == http.StatusOK {
		if ct := header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		var got person
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("decoding the echo %q: %v", body, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("decoded person (-want +got):\n%s", diff)
		}
		return
	}
	got := decodeProblem(t, header, body)
	want := problem.Problem{Status: tc.wantStatus, Title: http.StatusText(tc.wantStatus), Detail: tc.wantDetail}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problem (-want +got):\n%s", diff)
	}
}

// decodeProblem checks that an answer is a problem document and decodes it.
func decodeProblem(t *testing.T, header http.Header, body []byte) problem.Problem {
	t.Helper()
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem.Problem
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decoding the problem %q: %v", body, err)
	}
	if dec.More() {
		t.Errorf("more than one value in the problem body %q", body)
	}
	return p
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			decodeHandler(t)(rec, newDecodeRequest(t, "http://example.com/people", tc))
			checkDecodeAnswer(t, tc, rec.Code, rec.Header(), rec.Body.Bytes())
		})
	}
}

// TestDecodeJSONOverHTTP runs the same requests through a real server and client,
// where the body arrives from the network and a 413 closes the connection.
func TestDecodeJSONOverHTTP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(decodeHandler(t))
	t.Cleanup(srv.Close)
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := srv.Client().Do(newDecodeRequest(t, srv.URL, tc))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			checkDecodeAnswer(t, tc, resp.StatusCode, resp.Header, body)
		})
	}
}

func TestDecodeJSONReturnsTheProblemWritten(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodPost, "/people", strings.NewReader(`{"age": "x"}`))
	req = req.WithContext(requestid.NewContext(req.Context(), "req-1"))
	rec := httptest.NewRecorder()

	var p person
	err := service.DecodeJSON(rec, req, &p)
	var got *problem.Problem
	if !errors.As(err, &got) {
		t.Fatalf("DecodeJSON = %v, want a *Problem", err)
	}
	written := decodeProblem(t, rec.Header(), rec.Body.Bytes())
	if diff := cmp.Diff(written, *got); diff != "" {
		t.Errorf("returned problem differs from the written one (-written +returned):\n%s", diff)
	}
	if got.RequestID != "req-1" {
		t.Errorf("RequestID = %q, want req-1", got.RequestID)
	}
	if want := `Bad Request: field "age": expected number (int), got string`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestDecodeJSONInvalidTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"nil pointer", (*person)(nil)},
		{"not a pointer", person{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := strings.NewReader(`{"name": "Ada"}`)
			req := httptest.NewRequest(http.MethodPost, "/people", body)
			rec := httptest.NewRecorder()

			err := service.DecodeJSON(rec, req, tc.v)
			var invalid *json.InvalidUnmarshalError
			if !errors.As(err, &invalid) {
				t.Errorf("DecodeJSON = %v, want a *json.InvalidUnmarshalError", err)
			}
			var prob *problem.Problem
			if !errors.As(err, &prob) || prob.Status != http.StatusInternalServerError {
				t.Errorf("DecodeJSON = %v, want it to wrap the 500 *Problem", err)
			}
			if !strings.HasPrefix(err.Error(), "service: DecodeJSON: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			got := decodeProblem(t, rec.Header(), rec.Body.Bytes())
			if got.Status != http.StatusInternalServerError || rec.Code != http.StatusInternalServerError {
				t.Errorf("status = %d (problem %d), want 500", rec.Code, got.Status)
			}
			if body.Len() == 0 {
				t.Error("the body was read although the target is invalid")
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		v          any
		wantStatus int
		wantBody   string
	}{
		{"object", http.StatusCreated, map[string]int{"id": 42}, http.StatusCreated, "{\"id\":42}\n"},
		{"zero status means 200", 0, []string{"a", "b"}, http.StatusOK, "[\"a\",\"b\"]\n"},
		{"nil", http.StatusOK, nil, http.StatusOK, "null\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			if err := service.WriteJSON(rec, tc.status, tc.v); err != nil {
				t.Fatalf("WriteJSON: %v", err)
			}
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(tc.wantBody)) {
				t.Errorf("Content-Length = %q, want %d", cl, len(tc.wantBody))
			}
			if got := rec.Body.String(); got != tc.wantBody {
				t.Errorf("body = %q, want %q", got, tc.wantBody)
			}
		})
	}
}

type failingMarshaler struct{}

func (failingMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("boom") }

func TestWriteJSONUnencodable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
	}{
		{"channel", make(chan int)},
		{"infinity", math.Inf(1)},
		{"NaN after good fields", map[string]any{"a": "written first", "b": math.NaN()}},
		{"failing MarshalJSON after good fields", []any{"written first", failingMarshaler{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			err := service.WriteJSON(rec, http.StatusOK, tc.v)
			if err == nil || !strings.HasPrefix(err.Error(), "service: WriteJSON: ") {
				t.Errorf("WriteJSON error = %v, want one starting with %q", err, "service: WriteJSON: ")
			}
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("status = %d, want 500", rec.Code)
			}
			got := decodeProblem(t, rec.Header(), rec.Body.Bytes())
			want := problem.Problem{Status: http.StatusInternalServerError, Title: "Internal Server Error",
				Detail: "the response could not be encoded"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
			if strings.Contains(rec.Body.String(), "written first") {
				t.Errorf("part of the value was written: %q", rec.Body.String())
			}
		})
	}
}
