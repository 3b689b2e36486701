package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Defaults of a [Verifier]. Each can be changed with the option named beside it.
const (
	// DefaultRefresh is how often a JWKS is fetched again ([WithRefresh]).
	DefaultRefresh = time.Hour
	// DefaultUnknownKidInterval is the least time between two fetches of an
	// issuer's JWKS caused by tokens with an unknown kid
	// ([WithUnknownKidInterval]).
	DefaultUnknownKidInterval = 5 * time.Minute
	// DefaultFetchTimeout bounds one JWKS fetch ([WithFetchTimeout]).
	DefaultFetchTimeout = 10 * time.Second
	// DefaultMaxJWKSSize bounds the size of a JWKS response ([WithMaxJWKSSize]).
	DefaultMaxJWKSSize = 1 << 20
)

// Option configures [NewVerifier]. Options are applied in order.
type Option func(*config)

type config struct {
	client       *http.Client
	refresh      time.Duration
	unknownKid   time.Duration
	fetchTimeout time.Duration
	maxJWKS      int64
	now          func() time.Time
	logger       *slog.Logger
	nilClient    bool
	nilClock     bool
}

// WithHTTPClient sets the client that fetches JWKS. Pass pier's discovery
// client (service.Client()) so that a JWKSURL may name a service,
// http://users/.well-known/jwks.json. The Verifier uses a copy of c whose
// redirects may not leave the first host nor go from https to http, and whose
// responses are cut at [WithMaxJWKSSize]; c itself is not changed. The default
// is a client of the Verifier's own, on a clone of http.DefaultTransport, whose
// idle connections Close closes. nil is an error.
func WithHTTPClient(c *http.Client) Option {
	return func(cfg *config) { cfg.client, cfg.nilClient = c, c == nil }
}

// WithRefresh sets how often each JWKS is fetched again, so that added keys are
// known before tokens use them and removed keys stop verifying. The default is
// [DefaultRefresh], 1 h. 0 means the default; negative is an error.
func WithRefresh(d time.Duration) Option {
	return func(cfg *config) { cfg.refresh = d }
}

// WithUnknownKidInterval sets the least time between two fetches of one
// issuer's JWKS caused by tokens whose kid is unknown: a rotated key is picked
// up by the first token that uses it, and a flood of tokens with random kids
// costs the issuer at most one fetch per interval. Tokens that arrive while such
// a fetch runs wait for it. It is also the longest pause between retries while
// a JWKS has never been fetched. The default is [DefaultUnknownKidInterval],
// 5 min. 0 means the default; negative is an error.
func WithUnknownKidInterval(d time.Duration) Option {
	return func(cfg *config) { cfg.unknownKid = d }
}

// WithFetchTimeout bounds one JWKS fetch, connection to last byte. The default
// is [DefaultFetchTimeout], 10 s. 0 means the default; negative is an error.
func WithFetchTimeout(d time.Duration) Option {
	return func(cfg *config) { cfg.fetchTimeout = d }
}

// WithMaxJWKSSize bounds a JWKS response body, in bytes; a larger one fails the
// fetch and the last good keys stay. The default is [DefaultMaxJWKSSize],
// 1 MiB, hundreds of keys. 0 means the default; negative is an error.
func WithMaxJWKSSize(n int64) Option {
	return func(cfg *config) { cfg.maxJWKS = n }
}

// WithClock sets the clock that exp, nbf and iat are checked against and that
// paces unknown-kid fetches. The default is time.Now. nil is an error.
func WithClock(now func() time.Time) Option {
	return func(cfg *config) { cfg.now, cfg.nilClock = now, now == nil }
}

// WithLogger sets the logger for JWKS fetches in the background: Warn when one
// fails, Debug when one succeeds. Refused tokens are not logged; they come back
// as errors (see [WithOnFailure]). The default discards everything; nil keeps
// the default.
func WithLogger(l *slog.Logger) Option {
	return func(cfg *config) { cfg.logger = l }
}

func (c *config) validate() error {
	switch {
	case c.nilClient:
		return errors.New("nil HTTP client")
	case c.nilClock:
		return errors.New("nil clock")
	case c.refresh < 0:
		return fmt.Errorf("refresh %v: want >= 0", c.refresh)
	case c.unknownKid < 0:
		return fmt.Errorf("unknown-kid interval %v: want >= 0", c.unknownKid)
	case c.fetchTimeout < 0:
		return fmt.Errorf("fetch timeout %v: want >= 0", c.fetchTimeout)
	case c.maxJWKS < 0:
		return fmt.Errorf("max JWKS size %d: want >= 0", c.maxJWKS)
	}
	return nil
}

// Verifier verifies bearer tokens (JWTs, RFC 7519) against a fixed set of
// [Issuer]s. It is safe for concurrent use. A Verifier with a JWKSURL issuer
// fetches in the background until [Verifier.Close].
type Verifier struct {
	issuers map[string]*issuer
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc // v.key, bound once
	algs    []string    // every issuer's algorithms
	now     func() time.Time

	cancel    context.CancelFunc // ends the JWKS goroutines' context
	mu        sync.Mutex
	closed    bool
	wg        sync.WaitGroup
	transport *http.Transport // the default client's, closed by Close; nil with WithHTTPClient
}

type issuer struct {
	name      string
	algs      []string
	validator *jwt.Validator
	static    *keySet
	jwks      *jwksSource
	limiter   *rate.Limiter
}

func (is *issuer) keySet() *keySet {
	if is.jwks != nil {
		return is.jwks.keys.Load()
	}
	return is.static
}

// NewVerifier returns a Verifier for issuers. It validates every issuer and key
// and returns an error naming the first that cannot work. For each issuer with
// a JWKSURL it starts one goroutine that fetches the set at once and then on
// the [WithRefresh] schedule; NewVerifier does not wait for the first fetch, but
// a token that arrives before it ends waits for it (within the request's
// context). Call [Verifier.Close] to stop the goroutines.
func NewVerifier(issuers []Issuer, opts ...Option) (*Verifier, error) {
	cfg := config{
		refresh:      DefaultRefresh,
		unknownKid:   DefaultUnknownKidInterval,
		fetchTimeout: DefaultFetchTimeout,
		maxJWKS:      DefaultMaxJWKSSize,
		now:          time.Now,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("auth: nil option")
		}
		before := cfg
		o(&cfg)
		// zero means the default
		if cfg.refresh == 0 {
			cfg.refresh = before.refresh
		}
		if cfg.unknownKid == 0 {
			cfg.unknownKid = before.unknownKid
		}
		if cfg.fetchTimeout == 0 {
			cfg.fetchTimeout = before.fetchTimeout
		}
		if cfg.maxJWKS == 0 {
			cfg.maxJWKS = before.maxJWKS
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if len(issuers) == 0 {
		return nil, errors.New("auth: no issuers")
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{issuers: make(map[string]*issuer, len(issuers)), now: cfg.now}
	var union []string
	var sources []*jwksSource
	for i, in := range issuers {
		is, err := newIssuer(in, cfg.now)
		if err != nil {
			return nil, fmt.Errorf("auth: issuer %d (%q): %w", i, in.Issuer, err)
		}
		if _, dup := v.issuers[in.Issuer]; dup {
			return nil, fmt.Errorf("auth: issuer %d: %q given twice", i, in.Issuer)
		}
		for _, a := range is.algs {
			if !slices.Contains(union, a) {
				union = append(union, a)
			}
		}
		if in.JWKSURL != "" {
			is.jwks = &jwksSource{
				issuer: in.Issuer, url: in.JWKSURL, timeout: cfg.fetchTimeout,
				refresh: cfg.refresh, retryMax: cfg.unknownKid, algs: is.algs, logger: logger, now: v.now,
			}
			is.limiter = rate.NewLimiter(rate.Every(cfg.unknownKid), 1)
			sources = append(sources, is.jwks)
		}
		v.issuers[in.Issuer] = is
	}
	v.algs = union
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(union),
		jwt.WithoutClaimsValidation(), // done per issuer once the signature is verified
		jwt.WithStrictDecoding(),
	)
	v.keyfunc = v.key
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	if len(sources) > 0 {
		client := cfg.client
		if client == nil {
			if t, ok := http.DefaultTransport.(*http.Transport); ok {
				v.transport = t.Clone()
			} else { // a program replaced it: start from net/http's zero Transport
				v.transport = &http.Transport{Proxy: http.ProxyFromEnvironment}
			}
			client = &http.Client{Transport: v.transport}
		}
		client = jwksClient(client, cfg.maxJWKS)
		for _, s := range sources {
			s.client = client
			s.kick = make(chan chan struct{}, 1)
			first := make(chan struct{})
			s.inflight = first // requests before the first fetch ends wait for it
			v.wg.Add(1)
			go func() {
				defer v.wg.Done()
				s.run(ctx, first)
			}()
		}
	}
	return v, nil
}

func newIssuer(in Issuer, now func() time.Time) (*issuer, error) {
	switch {
	case in.Issuer == "":
		return nil, errors.New("empty Issuer")
	case len(in.Audiences) == 0:
		return nil, errors.New("no Audiences")
	case slices.Contains(in.Audiences, ""):
		return nil, errors.New("empty audience in Audiences")
	case len(in.Algorithms) == 0:
		return nil, errors.New("no Algorithms")
	case in.Leeway < 0 || in.Leeway > MaxLeeway:
		return nil, fmt.Errorf("leeway %v: want 0 to %v", in.Leeway, MaxLeeway)
	case len(in.Keys) > 0 && in.JWKSURL != "":
		return nil, errors.New("both Keys and JWKSURL: give one")
	case len(in.Keys) == 0 && in.JWKSURL == "":
		return nil, errors.New("neither Keys nor JWKSURL")
	}
	is := &issuer{name: in.Issuer}
	for _, a := range in.Algorithms {
		if _, _, ok := algSpec(a); !ok {
			return nil, fmt.Errorf("algorithm %q is not supported", a)
		}
		if in.JWKSURL != "" && isHMAC(a) {
			return nil, fmt.Errorf("algorithm %s needs a shared secret, which a JWKS cannot carry", a)
		}
		if !slices.Contains(is.algs, a) {
			is.algs = append(is.algs, a)
		}
	}
	if in.JWKSURL != "" {
		u, err := url.Parse(in.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("JWKSURL %q: want an absolute http or https URL", in.JWKSURL)
		}
	}
	var keys []boundKey
	var ids []string
	for i, k := range in.Keys {
		if !slices.Contains(is.algs, k.Algorithm) {
			return nil, fmt.Errorf("key %d (%q): algorithm %q is not in Algorithms", i, k.ID, k.Algorithm)
		}
		bk, err := bindKey(k.Algorithm, k.Key)
		if err != nil {
			return nil, fmt.Errorf("key %d (%q): %w", i, k.ID, err)
		}
		if k.ID != "" && slices.Contains(ids, k.ID) {
			return nil, fmt.Errorf("key %d: ID %q given twice", i, k.ID)
		}
		keys = append(keys, boundKey{alg: k.Algorithm, key: bk})
		ids = append(ids, k.ID)
	}
	if len(keys) > 0 {
		is.static = newKeySet(keys, ids)
	}
	is.validator = jwt.NewValidator(
		jwt.WithIssuer(in.Issuer),
		jwt.WithAudience(slices.Clone(in.Audiences)...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(in.Leeway),
		jwt.WithTimeFunc(now),
	)
	return is, nil
}

// Close stops the JWKS goroutines, cutting a running fetch short, and waits for
// them. Keys fetched so far keep verifying; no new fetch starts.
// Close is idempotent and always returns nil.
func (v *Verifier) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.mu.Unlock()
	v.cancel()
	v.wg.Wait()
	if v.transport != nil {
		v.transport.CloseIdleConnections()
	}
	return nil
}

// Ready returns nil when every JWKS issuer has a key set, and an error naming
// the first that has none yet. Static issuers are always ready. Its shape is
// health.Checker's, for a readiness check: without keys every token is refused.
func (v *Verifier) Ready(ctx context.Context) error {
	for _, is := range v.issuers {
		if is.jwks != nil && is.jwks.keys.Load() == nil {
			return fmt.Errorf("auth: no keys fetched yet for issuer %q", is.name)
		}
	}
	return nil
}

// KeySet is what a [Verifier] holds of one issuer's JSON Web Key Set.
type KeySet struct {
	Issuer string // the issuer's iss
	URL    string // the JWKS URL
	// Fetched is when the last fetch that brought usable keys ended, by the
	// verifier's clock ([WithClock]); zero while none has. A failed fetch
	// leaves it, and the keys, as they were.
	Fetched time.Time
	// Keys is how many keys the set holds that verify signatures: one for
	// each algorithm of the issuer's a key may be used with. 0 while no fetch
	// has brought any.
	Keys int
}

// KeySets returns the state of the key set of every issuer whose keys come
// from a JWKS URL, sorted by issuer; issuers with static keys are not listed.
// Its use is telemetry: the age of a set (now minus Fetched) growing past the
// refresh interval ([WithRefresh]) says its endpoint keeps failing, and the
// keys it holds will not follow a rotation.
func (v *Verifier) KeySets() []KeySet {
	var out []KeySet
	for _, is := range v.issuers {
		if is.jwks == nil {
			continue
		}
		ks := KeySet{Issuer: is.name, URL: is.jwks.url}
		if set := is.jwks.keys.Load(); set != nil {
			ks.Fetched, ks.Keys = set.fetched, set.n
		}
		out = append(out, ks)
	}
	slices.SortFunc(out, func(a, b KeySet) int { return strings.Compare(a.Issuer, b.Issuer) })
	return out
}

// forbiddenHeaders are JOSE header parameters that make a verifier fetch or
// trust key material chosen by the sender (jku, x5u, jwk), or demand
// extensions this package does not implement (crit, RFC 7515 section 4.1.11).
var forbiddenHeaders = [...]string{"jku", "jwk", "x5u", "crit"}

// key is the jwt.Keyfunc: it runs after the token is decoded and before its
// signature is checked. The unverified iss only chooses whose keys to try.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	for _, h := range forbiddenHeaders {
		if _, ok := t.Header[h]; ok {
			return nil, fail(ReasonHeader, fmt.Errorf("token header has %q", h))
		}
	}
	is := v.issuerOf(t.Claims)
	if is == nil {
		return nil, fail(ReasonIssuer, errUnknownIssuer)
	}
	alg := t.Method.Alg()
	if !slices.Contains(is.algs, alg) {
		return nil, fail(ReasonAlgorithm, fmt.Errorf("algorithm %q is not accepted for this issuer", alg))
	}
	kid, hasKID := t.Header["kid"]
	var id string
	if hasKID {
		var ok bool
		if id, ok = kid.(string); !ok {
			return nil, fail(ReasonMalformed, errors.New("kid is not a string"))
		}
	}
	k, err := is.keySet().lookup(id, hasKID, alg)
	if err != nil {
		return nil, err
	}
	return k, nil
}

var errUnknownIssuer = errors.New("iss names no configured issuer")

func (v *Verifier) issuerOf(c jwt.Claims) *issuer {
	mc, ok := c.(jwt.MapClaims)
	if !ok {
		return nil
	}
	iss, _ := mc["iss"].(string)
	return v.issuers[iss]
}

// Verify verifies token and returns its claims, or an [*Error] saying why it is
// refused. In order it refuses: tokens over [MaxTokenSize]; malformed tokens;
// JOSE headers with jku, jwk, x5u or crit; an iss that names no issuer; an
// algorithm outside that issuer's allowlist; a kid that names no key, or a key
// bound to another algorithm; a signature that does not verify; then, with the
// issuer's leeway, a missing or passed exp, a future nbf or iat, another iss,
// and an aud without any of the issuer's audiences.
//
// A token whose kid is unknown to a JWKS issuer makes the Verifier fetch that
// set again, at most once per [WithUnknownKidInterval]; Verify waits for that
// fetch (or one already running) within ctx. Otherwise Verify does no I/O.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > MaxTokenSize {
		return nil, fail(ReasonTooLarge, fmt.Errorf("token has %d bytes, over %d", len(token), MaxTokenSize))
	}
	if token == "" {
		return nil, fail(ReasonMissing, errors.New("empty token"))
	}
	c, is, err := v.verify(token)
	if err != nil && err.Reason == ReasonUnknownKey && is != nil && is.jwks != nil && v.refetch(ctx, is) {
		c, _, err = v.verify(token)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// refetch claims an unknown-kid fetch of is's JWKS if the interval allows, or
// joins the fetch in flight, and waits for it within ctx. The fetch itself runs
// on the issuer's goroutine, so it serves every request waiting for it and is
// not cut short when the request that claimed it ends. refetch reports whether
// a fetch ended meanwhile.
func (v *Verifier) refetch(ctx context.Context, is *issuer) bool {
	ch, _ := is.jwks.claim(func() bool { return is.limiter.AllowN(v.now(), 1) })
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

func (v *Verifier) verify(token string) (*Claims, *issuer, *Error) {
	mc := jwt.MapClaims{}
	t, err := v.parser.ParseWithClaims(token, mc, v.keyfunc)
	if err != nil {
		var is *issuer
		if t != nil {
			is = v.issuerOf(mc)
		}
		return nil, is, v.parseError(err, t)
	}
	is := v.issuerOf(mc) // the keyfunc found it, so it is there
	if _, ok := mc["exp"]; !ok {
		return nil, is, fail(ReasonMalformed, errors.New("token has no exp claim"))
	}
	if err := is.validator.Validate(mc); err != nil {
		return nil, is, claimsError(err)
	}
	c, cerr := newClaims(mc, is.name)
	if cerr != nil {
		return nil, is, cerr
	}
	return c, is, nil
}

func (v *Verifier) parseError(err error, t *jwt.Token) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e // from the keyfunc
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(ReasonMalformed, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable): // alg unknown to golang-jwt, or missing
		return fail(ReasonAlgorithm, err)
	case t != nil && t.Method != nil && !slices.Contains(v.algs, t.Method.Alg()):
		return fail(ReasonAlgorithm, err) // refused by WithValidMethods, e.g. "none"
	}
	return fail(ReasonSignature, err)
}

func claimsError(err error) *Error {
	switch {
	case errors.Is(err, jwt.ErrInvalidType):
		return fail(ReasonMalformed, err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fail(ReasonIssuer, err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fail(ReasonAudience, err) // exp and iss are known present: the missing claim is aud
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(ReasonExpired, err)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fail(ReasonNotYetValid, err)
	}
	return fail(ReasonMalformed, err)
}

func newClaims(mc jwt.MapClaims, iss string) (*Claims, *Error) {
	c := &Claims{Issuer: iss, Raw: mc}
	var err error
	if c.Subject, err = mc.GetSubject(); err != nil {
		return nil, fail(ReasonMalformed, err)
	}
	if jti, ok := mc["jti"]; ok {
		if c.ID, ok = jti.(string); !ok {
			return nil, fail(ReasonMalformed, errors.New("jti is not a string"))
		}
	}
	aud, _ := mc.GetAudience() // checked by the validator
	c.Audience = aud
	c.ExpiresAt = numericDate(mc["exp"])
	c.IssuedAt = numericDate(mc["iat"])
	c.NotBefore = numericDate(mc["nbf"])
	if c.Scopes, err = scopes(mc); err != nil {
		return nil, fail(ReasonMalformed, err)
	}
	return c, nil
}

// numericDate converts a time claim that the validator has accepted. Unlike
// MapClaims' getters it allocates nothing.
func numericDate(v any) time.Time {
	f, ok := v.(float64)
	if !ok {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).Truncate(jwt.TimePrecision)
}

// scopes reads scope (a space-separated string) or, without it, scp (an array
// of strings, or a space-separated string as some issuers send it).
func scopes(mc jwt.MapClaims) ([]string, error) {
	if s, ok := mc["scope"]; ok {
		str, ok := s.(string)
		if !ok {
			return nil, errors.New("scope is not a string")
		}
		return strings.Fields(str), nil
	}
	s, ok := mc["scp"]
	if !ok {
		return nil, nil
	}
	switch s := s.(type) {
	case string:
		return strings.Fields(s), nil
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			str, ok := e.(string)
			if !ok || str == "" || strings.ContainsAny(str, " \t\r\n") {
				return nil, errors.New("scp holds something other than scope names")
			}
			out = append(out, str)
		}
		return out, nil
	}
	return nil, errors.New("scp is neither an array nor a string")
}

// VerifyRequest verifies the bearer token of r (RFC 6750 section 2.1) with
// r's context. r must carry exactly one Authorization header, of scheme Bearer
// (any case), without CR, LF or NUL. A request without one, or with another
// scheme, gets [ReasonMissing].
func (v *Verifier) VerifyRequest(r *http.Request) (*Claims, error) {
	tok, err := bearer(r.Header)
	if err != nil {
		return nil, err
	}
	return v.Verify(r.Context(), tok)
}

func bearer(h http.Header) (string, *Error) {
	vals := h["Authorization"]
	switch len(vals) {
	case 0:
		return "", fail(ReasonMissing, errors.New("no Authorization header"))
	case 1:
	default:
		return "", fail(ReasonHeader, fmt.Errorf("%d Authorization headers", len(vals)))
	}
	s := vals[0]
	if len(s) > MaxTokenSize+len("Bearer ")+16 {
		return "", fail(ReasonTooLarge, fmt.Errorf("the Authorization header has %d bytes", len(s)))
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", fail(ReasonHeader, errors.New("the Authorization header holds CR, LF or NUL"))
	}
	scheme, tok, _ := strings.Cut(s, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fail(ReasonMissing, errors.New("the Authorization scheme is not Bearer"))
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" {
		return "", fail(ReasonMalformed, errors.New("empty bearer token"))
	}
	if !isB64Token(tok) {
		return "", fail(ReasonMalformed, errors.New("bearer token has characters outside RFC 6750's b64token"))
	}
	return tok, nil
}

// isB64Token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
