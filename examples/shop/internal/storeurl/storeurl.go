package storeurl

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pier-go/pier/examples/shop/internal/pgdb"
)

// Kind is the store a URL names.
type Kind int

// The kinds of store.
const (
	SQLite Kind = iota + 1
	Postgres
)

// Location is a parsed database URL.
type Location struct {
	Kind Kind
	// Dir and File locate the SQLite database (Kind SQLite).
	Dir, File string
	// URL is the PostgreSQL URL, unchanged (Kind Postgres).
	URL string
}

// Parse reads dsn; file is the service's SQLite file name, used when dsn is a
// directory. An empty dsn, or a scheme other than sqlite, postgres and
// postgresql, is an error.
func Parse(dsn, file string) (Location, error) {
	switch {
	case dsn == "":
		return Location{}, errors.New("storeurl: empty database URL")
	case pgdb.IsURL(dsn):
		return Location{Kind: Postgres, URL: dsn}, nil
	}
	path := dsn
	if scheme, rest, ok := strings.Cut(dsn, ":"); ok && isScheme(scheme) {
		if !strings.EqualFold(scheme, "sqlite") {
			return Location{}, fmt.Errorf("storeurl: database URL %q: unknown scheme %q (want sqlite: or postgres://)", redact(dsn), scheme)
		}
		path = rest
		if p, ok := strings.CutPrefix(path, "//"); ok {
			path = p // sqlite:///abs -> /abs; sqlite://rel -> rel
		}
	}
	if path == "" {
		return Location{}, fmt.Errorf("storeurl: database URL %q: no path", dsn)
	}
	if strings.HasSuffix(path, ".db") {
		return Location{Kind: SQLite, Dir: filepath.Dir(path), File: filepath.Base(path)}, nil
	}
	return Location{Kind: SQLite, Dir: path, File: file}, nil
}

// isScheme tells a URL scheme from a Windows drive letter (C:) or a path:
// two or more letters, digits, '+', '-' or '.', starting with a letter.
func isScheme(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// redact drops what may be a password from a URL with an unknown scheme.
func redact(dsn string) string {
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			return scheme + "://xxxxx@" + rest[at+1:]
		}
	}
	return dsn
}
