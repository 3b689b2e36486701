// Package semconvutil holds the pieces of OpenTelemetry's HTTP semantic
// conventions that the server (service) and the client (discovery) both need:
// method normalisation, span names, protocol versions, host and port
// splitting, and a header carrier for W3C propagation. otelhttp shares the
// same helpers between its handler and its transport through an internal
// package; pier does likewise rather than import otelhttp, whose middleware
// would allocate more per request than pier's budget allows.
package semconvutil

import (
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// KnownMethod reports whether m is a method the HTTP semantic conventions
// know by name: the RFC 9110 methods, PATCH and QUERY.
func KnownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch, "QUERY":
		return true
	}
	return false
}

// Method is http.request.method for m: m when it is known, else "_OTHER", so
// that clients cannot mint metric series. An empty m is GET, as net/http
// sends it.
func Method(m string) string {
	switch {
	case m == "":
		return http.MethodGet
	case KnownMethod(m):
		return m
	}
	return "_OTHER"
}

// MethodAttrs returns http.request.method, and http.request.method_original
// when the method is not one the conventions know (the first is then
// _OTHER); original is the zero KeyValue otherwise.
func MethodAttrs(m string) (method, original attribute.KeyValue) {
	n := Method(m)
	if n == "_OTHER" {
		return semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(m)
	}
	return semconv.HTTPRequestMethodKey.String(n), attribute.KeyValue{}
}

// SpanName is "METHOD route", or "METHOD" without a route, as the HTTP
// semantic conventions name spans; a method they do not know is "HTTP".
func SpanName(method, route string) string {
	switch {
	case method == "":
		method = http.MethodGet
	case !KnownMethod(method):
		method = "HTTP"
	}
	if route == "" {
		return method
	}
	return method + " " + route
}

// ProtocolVersion is network.protocol.version: "1.0", "1.1", "2", "3".
func ProtocolVersion(major, minor int) string {
	switch {
	case major == 1 && minor == 1:
		return "1.1"
	case major == 1 && minor == 0:
		return "1.0"
	case major >= 2 && minor == 0:
		return strconv.Itoa(major)
	}
	return strconv.Itoa(major) + "." + strconv.Itoa(minor)
}

// SplitHostPort splits "host:port", "[v6]:port" or a bare host; port is 0
// when there is none or it is not a port number.
func SplitHostPort(hostport string) (string, int) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), 0
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return host, 0
	}
	return host, port
}

// HeaderCarrier is propagation.HeaderCarrier without the canonicalisation of
// the W3C propagators' lower-case keys, which allocates a new key on every
// request.
type HeaderCarrier http.Header

func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return textproto.CanonicalMIMEHeaderKey(key)
}

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if v := c[canonicalKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key (several baggage headers).
func (c HeaderCarrier) Values(key string) []string { return c[canonicalKey(key)] }

// Set sets key to value.
func (c HeaderCarrier) Set(key, value string) { c[canonicalKey(key)] = []string{value} }

// Keys lists the keys.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
