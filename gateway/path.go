package gateway

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Reasons a path is refused. Each is the detail of the 400 problem the gateway
// answers with.
var (
	errPathEmpty      = errors.New("the path must start with /")
	errPathChar       = errors.New("the path holds a character that must be percent-encoded")
	errPathEscape     = errors.New("the path holds a malformed percent-escape")
	errPathEncoded    = errors.New("the path encodes a character that changes its meaning (/, \\, ., ;, ?, #, % or a control character)")
	errPathUTF8       = errors.New("the path is not valid UTF-8 once decoded")
	errPathDotSegment = errors.New("the path holds a . or .. segment")
	errPathEmptySeg   = errors.New("the path holds an empty segment (//)")
	errPathTooLong    = errors.New("the path is too long")
)

// maxPathLen bounds the paths the gateway accepts, decoded or not.
const maxPathLen = 8 << 10

// canonicalPath decides the one path that routing, auth, rate limiting and the
// upstream request all use. It takes the path as the client escaped it (the
// request-target without its query) and returns it decoded, or an error: the
// gateway answers such requests with 400 and never guesses.
//
// The rules, each closing a known confusion between a proxy and the server
// behind it:
//   - percent-escapes are decoded once; an escape of /, \, ., ;, ?, #, % or of
//     a control character is refused, since a server behind may decode it
//     again or treat it as a separator (Envoy CVE-2019-9901 and
//     CVE-2021-29492, Traefik CVE-2025-32431 and CVE-2025-66490);
//   - raw \, ;, control characters and anything outside RFC 3986's pchar set
//     are refused;
//   - "." and ".." segments are refused, not cleaned: a request that climbs
//     out of its route is an attack or a bug, and refusing it keeps what the
//     gateway checked and what the upstream serves the same path;
//   - empty segments (//) are refused but for a trailing slash, which is kept:
//     /a/ and /a are different paths to many servers;
//   - the decoded bytes must be valid UTF-8.
//
// Its output is a fixed point: escaping it again, as [url.URL.EscapedPath]
// does, and passing that through canonicalPath yields the same string.
func canonicalPath(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", errPathEmpty
	}
	if len(escaped) > maxPathLen {
		return "", errPathTooLong
	}
	// Fast path: nothing to decode.
	if strings.IndexByte(escaped, '%') < 0 {
		for i := 0; i < len(escaped); i++ {
			if !rawAllowed(escaped[i]) {
				return "", errPathChar
			}
		}
		if err := checkSegments(escaped); err != nil {
			return "", err
		}
		return escaped, nil
	}
	buf := make([]byte, 0, len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c != '%' {
			if !rawAllowed(c) {
				return "", errPathChar
			}
			buf = append(buf, c)
			continue
		}
		if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
			return "", errPathEscape
		}
		d := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
		i += 2
		switch {
		case d < 0x20 || d == 0x7f:
			return "", errPathEncoded
		case d == '/', d == '\\', d == '.', d == ';', d == '?', d == '#', d == '%':
			return "", errPathEncoded
		}
		buf = append(buf, d)
	}
	if !utf8.Valid(buf) {
		return "", errPathUTF8
	}
	p := string(buf)
	if err := checkSegments(p); err != nil {
		return "", err
	}
	return p, nil
}

// checkSegments refuses . and .. segments and empty segments other than a
// trailing slash. p starts with /.
func checkSegments(p string) error {
	rest := p[1:]
	for rest != "" {
		seg, after, found := strings.Cut(rest, "/")
		switch {
		case seg == "" && found:
			return errPathEmptySeg
		case seg == "." || seg == "..":
			return errPathDotSegment
		}
		rest = after
	}
	return nil
}

// rawAllowed reports whether c may appear unescaped in a path: RFC 3986's
// pchar (unreserved, sub-delims, ":" and "@") and "/", less ";", which some
// servers take for a parameter separator (Tomcat's path parameters, CVE-2025-66490).
// Bytes outside ASCII must be escaped; a decoded path may hold them.
func rawAllowed(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', ':', '@', '/':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// escapePath returns p, a canonical path, as it is sent upstream: the
// encoding net/url gives it, which canonicalPath decodes back to p.
func escapePath(p string) string {
	u := url.URL{Path: p}
	return u.EscapedPath()
}

// requestTarget returns the path the client sent, still escaped, or an error
// when the request-target is not in origin form (absolute-form, authority or
// asterisk form) or carries a fragment. r.RequestURI is what the client wrote
// on the request line; requests made in process have none, and then the URL's
// escaped path stands for it.
func requestTarget(requestURI string, u *url.URL) (string, error) {
	if requestURI != "" {
		if requestURI[0] != '/' {
			return "", errAbsoluteForm
		}
		if strings.IndexByte(requestURI, '#') >= 0 {
			return "", errFragment
		}
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return "", errFragment
	}
	return u.EscapedPath(), nil
}

var (
	errAbsoluteForm = errors.New("the request-target must be a path (origin form), not an absolute URL")
	errFragment     = errors.New("the request-target must not carry a fragment")
)

// upstreamPath returns the path sent upstream for the canonical path p, which
// matched a route with prefix: the prefix stripped or replaced by rewrite, or p
// itself. The result is checked again as a canonical path, so that no strip or
// rewrite can produce what the client could not send.
func upstreamPath(p, prefix string, strip bool, rewrite string) (string, error) {
	if !strip && rewrite == "" {
		return p, nil
	}
	rest := p
	if prefix != "/" {
		rest = p[len(prefix):]
	}
	var out string
	switch {
	case rewrite == "" && rest == "":
		out = "/"
	case rewrite == "":
		out = rest
	case rest == "":
		out = rewrite
	default:
		out = strings.TrimSuffix(rewrite, "/") + rest
	}
	c, err := canonicalPath(escapePath(out))
	if err != nil {
		return "", err
	}
	if c != out {
		return "", errPathEncoded
	}
	return out, nil
}
