package service

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/pier-go/pier/internal/bodylimit"
	"github.com/pier-go/pier/internal/requestid"
	"github.com/pier-go/pier/problem"
)

// DecodeJSON reads exactly one JSON value from r.Body into v, strictly: unknown
// object fields are rejected and nothing but white space may follow the value.
//
// On failure DecodeJSON has already written the response, an
// application/problem+json document (see [problem.Problem]) whose detail tells the client
// what is wrong, and it returns that problem as a *[problem.Problem], so a handler just
// returns:
//
//	var in CreateUser
//	if err := service.DecodeJSON(w, r, &in); err != nil {
//		return // the 4xx answer is sent
//	}
//
// The answers are:
//
//   - 415 when a Content-Type is given and is neither application/json nor an
//     application/*+json type; a request without Content-Type is accepted.
//   - 413 when the body is longer than the limit: the one the [BodyLimit]
//     middleware ([WithBodyLimit]) put on the body when it wrapped it, else
//     [DefaultBodyLimit].
//   - 408 when the body has not arrived by the request's deadline (inside a
//     Service, or behind [Timeout], the deadline bounds reading the body).
//   - 400 for an empty body, malformed or truncated JSON (with the byte offset of
//     a syntax error), a value of the wrong JSON type for its field (naming the
//     field path, the JSON type sent and the Go type expected), an unknown field,
//     or data after the value.
//
// v must be a non-nil pointer. Anything else is a programming error: DecodeJSON
// then answers 500 without reading the body and returns an error that wraps both
// the *json.InvalidUnmarshalError and the written *[problem.Problem].
//
// DecodeJSON reads r.Body and does not close it (the server does). It is safe for
// concurrent use on different requests.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		p := answer(w, r, http.StatusInternalServerError, "the request body could not be decoded")
		return fmt.Errorf("service: DecodeJSON: %w (sent %w)", &json.InvalidUnmarshalError{Type: reflect.TypeOf(v)}, p)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSONMediaType(ct) {
		return answer(w, r, http.StatusUnsupportedMediaType,
			fmt.Sprintf("Content-Type %q is not supported: send application/json", ct))
	}
	var body io.Reader = r.Body
	switch b := r.Body.(type) {
	case nil:
		body = http.NoBody
	case *bodylimit.Body: // BodyLimit has bounded it already
	default:
		// net/http's own writer, so that the server closes the connection after a 413.
		body = http.MaxBytesReader(bodylimit.BaseWriter(w), b, DefaultBodyLimit)
	}

	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		status, detail := statusAndDetail(err)
		return answer(w, r, status, detail)
	}
	// One value only: the next token must be the end of the body.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return answer(w, r, http.StatusRequestEntityTooLarge, tooLargeDetail(tooLarge))
		}
		return answer(w, r, http.StatusBadRequest, "request body must contain a single JSON value")
	}
	return nil
}

// statusAndDetail turns a decoding error into the status and detail of the answer.
func statusAndDetail(err error) (int, string) {
	var (
		tooLarge  *http.MaxBytesError
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, tooLargeDetail(tooLarge)
	case errors.Is(err, os.ErrDeadlineExceeded): // the read deadline that Timeout sets
		return http.StatusRequestTimeout, "the request body did not arrive within the request's deadline"
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, "request body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, "malformed JSON: unexpected end of body"
	case errors.As(err, &syntax):
		return http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte offset %d: %s", syntax.Offset, syntax)
	case errors.As(err, &wrongType):
		return http.StatusBadRequest, typeDetail(wrongType)
	}
	// encoding/json has no type for this one; its text is `json: unknown field "x"`.
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field ") {
		return http.StatusBadRequest, msg
	}
	// A field's own UnmarshalJSON or UnmarshalText failed, or the body could not be
	// read.
	return http.StatusBadRequest, "invalid request body: " + msg
}

func tooLargeDetail(e *http.MaxBytesError) string { return bodylimit.Detail(e.Limit) }

// typeDetail says `field "age": expected number (int), got string`.
func typeDetail(e *json.UnmarshalTypeError) string {
	where := "request body"
	if e.Field != "" {
		where = "field " + strconv.Quote(e.Field)
	}
	got := e.Value
	if got == "bool" {
		got = "boolean"
	}
	want := "<unknown>"
	if e.Type != nil {
		want = e.Type.String()
		kind := jsonKind(e.Type)
		switch {
		case kind == "" || kind == want:
		case strings.Contains(want, "struct {"):
			// An anonymous struct's Go type spells out its fields and tags:
			// noise to a client, so only the JSON type is named.
			want = kind
		default:
			want = kind + " (" + want + ")"
		}
	}
	return where + ": expected " + want + ", got " + got
}

// jsonKind names the JSON type that encoding/json decodes into t, or "" when t
// decodes itself from any JSON.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return ""
	}
	if pt.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return "string"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string" // base64
		}
		return "array"
	case reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return ""
}

// isJSONMediaType reports whether a Content-Type is application/json or
// application/*+json, ignoring parameters such as charset.
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) { // bad parameters: judge the type
		return false
	}
	return mt == "application/json" ||
		strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// answer writes a problem and returns it as it was sent.
func answer(w http.ResponseWriter, r *http.Request, status int, detail string) *problem.Problem {
	p := &problem.Problem{Status: status, Title: http.StatusText(status), Detail: detail}
	if r != nil {
		p.RequestID = requestid.FromContext(r.Context())
	}
	problem.Write(w, r, *p)
	return p
}

// WriteJSON sends v as JSON with the given status; a status of 0 means 200. It
// encodes v completely before writing anything, then sets Content-Type
// (application/json) and Content-Length, so a client never receives half a body.
//
// When v cannot be encoded (a channel, a function, math.Inf, a failing
// MarshalJSON), WriteJSON answers with a 500 problem instead, without a request
// ID as it has no request, and returns the encoding error. It also returns an
// error when writing the body fails, which means that the client has gone.
//
// WriteJSON is safe for concurrent use on different ResponseWriters.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	if status == 0 {
		status = http.StatusOK
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil { // Encode adds a newline
		problem.Status(w, nil, http.StatusInternalServerError, "the response could not be encoded")
		return fmt.Errorf("service: WriteJSON: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("service: WriteJSON: %w", err)
	}
	return nil
}
