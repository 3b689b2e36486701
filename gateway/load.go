package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// fileSpec is the schema of a route file; docs/gateway.md documents it.
type fileSpec struct {
	Routes []routeSpec `yaml:"routes" json:"routes"`
}

type routeSpec struct {
	Name        string         `yaml:"name,omitempty" json:"name,omitempty"`
	Prefix      string         `yaml:"prefix" json:"prefix"`
	Service     string         `yaml:"service" json:"service"`
	StripPrefix bool           `yaml:"strip_prefix,omitempty" json:"strip_prefix,omitempty"`
	Rewrite     string         `yaml:"rewrite,omitempty" json:"rewrite,omitempty"`
	Methods     []string       `yaml:"methods,omitempty" json:"methods,omitempty"`
	Auth        string         `yaml:"auth,omitempty" json:"auth,omitempty"`
	Scopes      []string       `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	AllScopes   bool           `yaml:"all_scopes,omitempty" json:"all_scopes,omitempty"`
	RateLimit   *rateLimitSpec `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	Timeout     string         `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	BodyLimit   int64          `yaml:"body_limit,omitempty" json:"body_limit,omitempty"`
	CORS        *corsSpec      `yaml:"cors,omitempty" json:"cors,omitempty"`
	WebSocket   bool           `yaml:"websocket,omitempty" json:"websocket,omitempty"`
}

type rateLimitSpec struct {
	Rate   float64 `yaml:"rate" json:"rate"`
	Burst  int     `yaml:"burst,omitempty" json:"burst,omitempty"`
	Key    string  `yaml:"key,omitempty" json:"key,omitempty"`
	Header string  `yaml:"header,omitempty" json:"header,omitempty"`
}

type corsSpec struct {
	Origins     []string `yaml:"origins" json:"origins"`
	Methods     []string `yaml:"methods,omitempty" json:"methods,omitempty"`
	Headers     []string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Expose      []string `yaml:"expose,omitempty" json:"expose,omitempty"`
	Credentials bool     `yaml:"credentials,omitempty" json:"credentials,omitempty"`
	MaxAge      string   `yaml:"max_age,omitempty" json:"max_age,omitempty"`
}

// LoadRoutes reads a route table from a file's contents: YAML when name ends
// in .yaml or .yml, JSON when it ends in .json, and otherwise JSON when data
// starts with '{', YAML if not. name is only used to choose the format and in
// errors. The schema is in docs/gateway.md.
//
// Decoding is strict: an unknown key ("strip-prefix" for "strip_prefix",
// "allscopes" for "all_scopes"), a key given twice, a value of the wrong type, a
// malformed duration, or a route that fails validation (including two routes
// with the same name or prefix) is an error that names the key or route and
// its line. The routes are validated as [New] would, but for what needs the
// gateway (a verifier for routes that need a token).
func LoadRoutes(name string, data []byte) ([]Route, error) {
	isJSON := false
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		isJSON = true
	case ".yaml", ".yml":
	default:
		isJSON = len(bytes.TrimSpace(data)) > 0 && bytes.TrimSpace(data)[0] == '{'
	}
	var f fileSpec
	var err error
	if isJSON {
		err = decodeJSON(data, &f)
	} else {
		err = decodeYAML(data, &f)
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: %s: %w", name, err)
	}
	lines := routeLines(data)
	routes := make([]Route, 0, len(f.Routes))
	var errs []error
	for i, s := range f.Routes {
		r, err := s.route()
		if err != nil {
			var re *RouteError
			if errors.As(err, &re) {
				re.File = name
				if i < len(lines) {
					re.Line = lines[i]
				}
			}
			errs = append(errs, err)
			continue
		}
		routes = append(routes, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if _, err := buildTable(routes, name, lines); err != nil {
		return nil, err
	}
	return routes, nil
}

// yamlUnknown matches yaml.v3's message for an unknown key.
var yamlUnknown = regexp.MustCompile(`^line (\d+): field (.*) not found in type .*$`)

func decodeYAML(data []byte, f *fileSpec) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(f)
	if errors.Is(err, io.EOF) {
		return errors.New("no routes")
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			if sm := yamlUnknown.FindStringSubmatch(m); sm != nil {
				m = "line " + sm[1] + ": unknown key " + strconv.Quote(sm[2])
			}
			msgs[i] = m
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	if err != nil {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

var jsonUnknown = regexp.MustCompile(`^json: unknown field "(.*)"$`)

func decodeJSON(data []byte, f *fileSpec) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(f)
	if err == nil {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("line %d: data after the route table", lineAt(data, int(dec.InputOffset())))
		}
		return dupJSONKeys(data)
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("line %d: %v", lineAt(data, int(se.Offset)), se)
	case errors.As(err, &te):
		return fmt.Errorf("line %d: key %q: %v", lineAt(data, int(te.Offset)), te.Field, te)
	}
	if m := jsonUnknown.FindStringSubmatch(err.Error()); m != nil {
		key := `"` + m[1] + `"`
		off := int(dec.InputOffset())
		i := bytes.LastIndex(data[:min(off, len(data))], []byte(key))
		if i < 0 {
			i = bytes.Index(data, []byte(key))
		}
		return fmt.Errorf("line %d: unknown key %q", lineAt(data, i), m[1])
	}
	return err
}

// dupJSONKeys refuses a JSON object that holds a key twice, which
// encoding/json would silently resolve to the last.
func dupJSONKeys(data []byte) error {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return err // yaml.v3 refuses duplicate mapping keys, naming both lines
	}
	return nil
}

// lineAt returns the 1-based line of byte offset off in data.
func lineAt(data []byte, off int) int {
	off = max(0, min(off, len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// routeLines returns the line of each route in a route file, YAML or JSON
// (which YAML parses), or nil.
func routeLines(data []byte) []int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "routes" && m.Content[i+1].Kind == yaml.SequenceNode {
			seq := m.Content[i+1]
			lines := make([]int, len(seq.Content))
			for j, item := range seq.Content {
				lines[j] = item.Line
			}
			return lines
		}
	}
	return nil
}

// route converts s to a Route.
func (s routeSpec) route() (Route, error) {
	name := s.Name
	if name == "" {
		name = s.Prefix
	}
	r := Route{Name: s.Name, Prefix: s.Prefix, Service: s.Service, StripPrefix: s.StripPrefix, Rewrite: s.Rewrite,
		Methods: s.Methods, Auth: AuthMode(s.Auth), Scopes: s.Scopes, AllScopes: s.AllScopes, BodyLimit: s.BodyLimit,
		WebSocket: s.WebSocket}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return Route{}, &RouteError{Route: name, Field: "timeout", Err: err}
		}
		r.Timeout = d
	}
	if rl := s.RateLimit; rl != nil {
		r.RateLimit = &RateLimit{Rate: rl.Rate, Burst: rl.Burst, Key: RateKey(rl.Key), Header: rl.Header}
	}
	if c := s.CORS; c != nil {
		r.CORS = &CORS{Origins: c.Origins, Methods: c.Methods, Headers: c.Headers, Expose: c.Expose,
			Credentials: c.Credentials}
		if c.MaxAge != "" {
			d, err := time.ParseDuration(c.MaxAge)
			if err != nil {
				return Route{}, &RouteError{Route: name, Field: "cors.max_age", Err: err}
			}
			r.CORS.MaxAge = d
		}
	}
	return r, nil
}

// specOf returns the file form of a validated route, with defaults filled
// in.
func specOf(r *route) routeSpec {
	s := routeSpec{Name: r.Name, Prefix: r.Prefix, Service: r.Service, StripPrefix: r.StripPrefix, Rewrite: r.Rewrite,
		Methods: r.Methods, Auth: string(r.Auth), Scopes: r.Scopes, AllScopes: r.AllScopes,
		Timeout: r.timeout.String(), BodyLimit: r.bodyLimit, WebSocket: r.WebSocket}
	if rl := r.RateLimit; rl != nil {
		s.RateLimit = &rateLimitSpec{Rate: rl.Rate, Burst: rl.Burst, Key: string(rl.Key), Header: rl.Header}
	}
	if c := r.CORS; c != nil {
		s.CORS = &corsSpec{Origins: c.Origins, Methods: c.Methods, Headers: c.Headers, Expose: c.Expose,
			Credentials: c.Credentials}
		if c.MaxAge > 0 {
			s.CORS.MaxAge = c.MaxAge.String()
		}
	}
	return s
}
