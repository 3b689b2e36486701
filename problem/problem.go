package problem

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/pier-go/pier/internal/requestid"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Problem is an RFC 9457 problem details object.
//
// Type, Title, Status, Detail and Instance are the members the RFC defines. RequestID
// and TraceID are extension members that tie the answer to the server's logs and
// traces; Extra holds any further extension members, which are written beside the
// others at the top level of the object.
type Problem struct {
	// Type is a URI reference that identifies the problem type. Empty means
	// "about:blank": the problem is described by the HTTP status alone.
	Type string `json:"type,omitempty"`
	// Title is a short summary of the problem type. Empty means the status text
	// (http.StatusText).
	Title string `json:"title,omitempty"`
	// Status is the HTTP status code. Zero means 500.
	Status int `json:"status"`
	// Detail explains this occurrence of the problem, for the client's developer.
	Detail string `json:"detail,omitempty"`
	// Instance is a URI reference for this occurrence. Empty leaves it out.
	Instance string `json:"instance,omitempty"`
	// RequestID is the request's X-Request-ID. Empty means the ID from the
	// request's context, when there is one.
	RequestID string `json:"request_id,omitempty"`
	// TraceID is the request's W3C trace ID, 32 hex digits. Empty means the
	// trace ID of the span a pier Service started for the request, when there
	// is one.
	TraceID string `json:"trace_id,omitempty"`
	// Extra holds extension members. Keys that clash with the members above are
	// ignored.
	Extra map[string]any `json:"-"`
}

// Error returns the title and detail, so a Problem can travel as an error.
func (p *Problem) Error() string {
	title := p.Title
	if title == "" {
		title = http.StatusText(p.status())
	}
	if p.Detail == "" {
		return title
	}
	return title + ": " + p.Detail
}

func (p *Problem) status() int {
	if p.Status == 0 {
		return http.StatusInternalServerError
	}
	return p.Status
}

// MarshalJSON writes the members and the extension members in one object.
func (p Problem) MarshalJSON() ([]byte, error) {
	type plain Problem // drops the method, so this does not recurse
	base, err := json.Marshal(plain(p))
	if err != nil || len(p.Extra) == 0 {
		return base, err
	}
	extra := make(map[string]any, len(p.Extra))
	for k, v := range p.Extra {
		switch k {
		case "type", "title", "status", "detail", "instance", "request_id", "trace_id":
			// the members: an extension of the same name never replaces one
		default:
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		return base, nil
	}
	more, err := json.Marshal(extra)
	if err != nil {
		return nil, err
	}
	// base is {...} and more is {...}: join them as one object.
	out := make([]byte, 0, len(base)+len(more))
	out = append(out, base[:len(base)-1]...)
	out = append(out, ',')
	out = append(out, more[1:]...)
	return out, nil
}

// Write sends p as the response to r. It fills Status, Title, RequestID and TraceID
// when they are empty (the IDs from what a pier Service recorded in r's context),
// sets Content-Type and Content-Length, and marks the answer as not to be cached
// (Cache-Control: no-store) and not to be sniffed. The body is encoded before
// anything is written, so a value in Extra that cannot be encoded yields a plain
// 500 problem rather than half a document. A HEAD request gets the headers only.
// A nil r is allowed: nothing is filled from it. Write is safe for concurrent use
// on different ResponseWriters.
func Write(w http.ResponseWriter, r *http.Request, p Problem) {
	p.Status = p.status()
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if r != nil {
		ctx := r.Context()
		if p.RequestID == "" {
			p.RequestID = requestid.FromContext(ctx)
		}
		if p.TraceID == "" {
			p.TraceID = requestid.TraceIDFromContext(ctx)
		}
	}
	body, err := json.Marshal(p)
	if err != nil {
		p = Problem{Status: http.StatusInternalServerError, Title: http.StatusText(http.StatusInternalServerError),
			Detail: "the error response could not be encoded", RequestID: p.RequestID, TraceID: p.TraceID}
		body, _ = json.Marshal(p) // only strings and an int: cannot fail
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Encoding") // a handler may have set it before failing
	w.WriteHeader(p.Status)
	if r == nil || r.Method != http.MethodHead {
		_, _ = w.Write(body) // the client has gone if this fails; nothing to do
	}
}

// Status writes a problem with the given status and detail, as [Write] does.
func Status(w http.ResponseWriter, r *http.Request, status int, detail string) {
	Write(w, r, Problem{Status: status, Detail: detail})
}
