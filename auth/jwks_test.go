package auth_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pier-go/pier/auth"
)

// jwksServer is a real JWKS endpoint on loopback that counts its fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	fetched chan int64 // each fetch's number, when someone listens

	mu     sync.Mutex
	body   []byte
	status int
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, status: http.StatusOK, fetched: make(chan int64, 1024)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.fetches.Add(1)
		select {
		case s.fetched <- n:
		default:
		}
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// jwks returns a JWK Set with the public halves of keys, by kid; alg "" leaves
// the JWK without alg.
func jwks(t testing.TB, keys ...jwkSpec) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(k.key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.USE(k.use)}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type jwkSpec struct {
	kid, alg, use string
	key           any
}

func jwksIssuer(url string, algs ...string) auth.Issuer {
	if len(algs) == 0 {
		algs = []string{"EdDSA"}
	}
	return auth.Issuer{Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: algs, JWKSURL: url}
}

func newJWKSVerifier(t *testing.T, s *jwksServer, opts ...auth.Option) *auth.Verifier {
	t.Helper()
	return newVerifier(t, []auth.Issuer{jwksIssuer(s.URL + "/jwks.json")},
		append([]auth.Option{auth.WithHTTPClient(s.Client())}, opts...)...)
}

func edToken(t testing.TB, key ed25519.PrivateKey, kid string) string {
	return sign(t, jwt.SigningMethodEdDSA, key, kid, claims(nil), nil)
}

func mustVerify(t *testing.T, v *auth.Verifier, tok string) {
	t.Helper()
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func mustRefuse(t *testing.T, v *auth.Verifier, tok string, reason auth.Reason) {
	t.Helper()
	if _, err := v.Verify(context.Background(), tok); reasonOf(err) != reason {
		t.Fatalf("verify: %v, want reason %q", err, reason)
	}
}

func TestJWKSCachedAcrossRequests(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}))
	v := newJWKSVerifier(t, s)
	tok := edToken(t, k.ed, "k1")
	mustVerify(t, v, tok)
	base := s.fetches.Load()
	for range 100 {
		mustVerify(t, v, tok)
	}
	if n := s.fetches.Load() - base; n != 0 {
		t.Errorf("%d fetches for 100 more verifications, want 0", n)
	}
	if err := v.Ready(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestJWKSRotationByOneFetch: the issuer rotates; the first token with the new
// kid verifies after exactly one extra fetch.
func TestJWKSRotationByOneFetch(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}))
	v := newJWKSVerifier(t, s)
	mustVerify(t, v, edToken(t, k.ed, "k1"))
	base := s.fetches.Load()
	s.set(http.StatusOK, jwks(t, jwkSpec{kid: "k2", key: k.ed2.Public()}))
	mustVerify(t, v, edToken(t, k.ed2, "k2"))
	if n := s.fetches.Load() - base; n != 1 {
		t.Fatalf("%d extra fetches, want 1", n)
	}
	mustVerify(t, v, edToken(t, k.ed2, "k2"))
	// The old key left the set, so its tokens stop verifying.
	mustRefuse(t, v, edToken(t, k.ed, "k1"), auth.ReasonUnknownKey)
	if n := s.fetches.Load() - base; n != 1 {
		t.Errorf("%d extra fetches, want still 1", n)
	}
}

// TestJWKSUnknownKidFloodCostsOneFetch: 10,000 tokens with random kids, from
// 8 goroutines at once, cause one fetch, not 10,000.
func TestJWKSUnknownKidFloodCostsOneFetch(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}))
	v := newJWKSVerifier(t, s)
	mustVerify(t, v, edToken(t, k.ed, "k1"))
	base := s.fetches.Load()
	const n, workers = 10000, 8
	header := func(i int) map[string]any { return map[string]any{"alg": "EdDSA", "kid": fmt.Sprintf("random-%d", i)} }
	sig := strings.Split(edToken(t, k.ed, "k1"), ".")[2]
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				_, err := v.Verify(context.Background(), rawToken(t, header(i), claims(nil), sig))
				if reasonOf(err) != auth.ReasonUnknownKey {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Errorf("%d tokens not refused as unknown_key", wrong.Load())
	}
	if got := s.fetches.Load() - base; got != 1 {
		t.Errorf("%d fetches caused by %d random kids, want 1", got, n)
	}
	mustVerify(t, v, edToken(t, k.ed, "k1"))
}

// TestJWKSUnknownKidRefetchOncePerInterval uses the Verifier's clock: a second
// unknown-kid fetch happens only once the interval has passed.
func TestJWKSUnknownKidRefetchOncePerInterval(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}))
	var now atomic.Int64
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	v := newJWKSVerifier(t, s, auth.WithClock(clock), auth.WithUnknownKidInterval(time.Minute))
	mustVerify(t, v, edToken(t, k.ed, "k1"))
	now.Add(int64(time.Minute)) // the first verification may have spent the allowance
	base := s.fetches.Load()
	mustRefuse(t, v, edToken(t, k.ed, "x1"), auth.ReasonUnknownKey) // one fetch
	now.Add(int64(59 * time.Second))
	mustRefuse(t, v, edToken(t, k.ed, "x2"), auth.ReasonUnknownKey) // within the interval: none
	if n := s.fetches.Load() - base; n != 1 {
		t.Fatalf("%d extra fetches, want 1", n)
	}
	now.Add(int64(time.Second))
	s.set(http.StatusOK, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}, jwkSpec{kid: "x3", key: k.ed2.Public()}))
	mustVerify(t, v, edToken(t, k.ed2, "x3")) // the interval has passed: one more fetch
	if n := s.fetches.Load() - base; n != 2 {
		t.Fatalf("%d extra fetches, want 2", n)
	}
}

// TestJWKSEndpointDownKeepsLastGoodKeys: failed fetches (an error status,
// garbage, an empty set, a set of keys we cannot use) never drop the keys.
func TestJWKSEndpointDownKeepsLastGoodKeys(t *testing.T) {
	k := keys()
	good := jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()})
	s := newJWKSServer(t, good)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	v := newJWKSVerifier(t, s, auth.WithClock(clock))
	tok := edToken(t, k.ed, "k1")
	mustVerify(t, v, tok)
	base := s.fetches.Load()
	bad := []struct {
		status int
		body   []byte
	}{
		{http.StatusServiceUnavailable, []byte("down")},
		{http.StatusOK, []byte("<html>not json")},
		{http.StatusOK, []byte(`{"keys":[]}`)},
		{http.StatusOK, jwks(t, jwkSpec{kid: "r", key: &k.rsa.PublicKey})}, // RSA, but the issuer takes EdDSA only
	}
	for i, b := range bad {
		s.set(b.status, b.body)
		now.Add(int64(auth.DefaultUnknownKidInterval))
		mustRefuse(t, v, edToken(t, k.ed, fmt.Sprintf("new-%d", i)), auth.ReasonUnknownKey)
		if n := s.fetches.Load() - base; n != int64(i+1) {
			t.Fatalf("case %d: %d extra fetches, want %d", i, n, i+1)
		}
		mustVerify(t, v, tok)
	}
}

// TestJWKSNoKeysEverIsRefused: an issuer whose set never arrived refuses every
// token; it never lets one pass.
func TestJWKSNoKeysEverIsRefused(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, nil)
	s.set(http.StatusInternalServerError, []byte("boom"))
	v := newJWKSVerifier(t, s)
	for _, tok := range []string{edToken(t, k.ed, "k1"), edToken(t, k.ed, ""),
		rawToken(t, map[string]any{"alg": "EdDSA"}, claims(nil), "")} {
		mustRefuse(t, v, tok, auth.ReasonUnknownKey)
	}
	if err := v.Ready(context.Background()); err == nil {
		t.Error("Ready without keys")
	}
	rec, ran, _, _ := serve(t, v, bearerHeader(edToken(t, k.ed, "k1")))
	if ran || rec.Code != http.StatusUnauthorized {
		t.Errorf("status %d, handler ran %v", rec.Code, ran)
	}
}

// TestJWKSScheduledRefresh: with the unknown-kid fetch spent, a new key is
// learnt from the schedule alone.
func TestJWKSScheduledRefresh(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}))
	v := newJWKSVerifier(t, s, auth.WithRefresh(20*time.Millisecond), auth.WithUnknownKidInterval(time.Hour))
	mustVerify(t, v, edToken(t, k.ed, "k1"))
	mustRefuse(t, v, edToken(t, k.ed2, "k2"), auth.ReasonUnknownKey) // spends the unknown-kid fetch
	s.set(http.StatusOK, jwks(t, jwkSpec{kid: "k2", key: k.ed2.Public()}))
	after := s.fetches.Load()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case n := <-s.fetched:
			if n <= after+1 { // that fetch may have started before the set changed
				continue
			}
		case <-deadline:
			t.Fatal("no scheduled fetch within 30 s")
		}
		break
	}
	mustVerify(t, v, edToken(t, k.ed2, "k2")) // waits for that fetch if it still runs
}

func TestJWKSOversizedSetRefused(t *testing.T) {
	k := keys()
	set := jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()})
	pad := func(n int) []byte { // whitespace is valid JSON: only the size is wrong
		return append([]byte(strings.Repeat(" ", n)), set...)
	}
	tests := []struct {
		name string
		body []byte
		opts []auth.Option
		ok   bool
	}{
		{name: "default limit, just under", body: pad(auth.DefaultMaxJWKSSize - len(set)), ok: true},
		{name: "default limit, over", body: pad(auth.DefaultMaxJWKSSize)},
		{name: "own limit, over", body: pad(4096), opts: []auth.Option{auth.WithMaxJWKSSize(4096)}},
		{name: "own limit, under", body: pad(100), opts: []auth.Option{auth.WithMaxJWKSSize(4096)}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newJWKSServer(t, tt.body)
			v := newJWKSVerifier(t, s, tt.opts...)
			_, err := v.Verify(context.Background(), edToken(t, k.ed, "k1"))
			if tt.ok != (err == nil) {
				t.Fatalf("err %v, want ok %v", err, tt.ok)
			}
		})
	}
	// A declared Content-Length over the limit is refused before the body.
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(auth.DefaultMaxJWKSSize+1))
		_, _ = w.Write(pad(auth.DefaultMaxJWKSSize + 1 - len(set)))
	}))
	t.Cleanup(big.Close)
	v := newVerifier(t, []auth.Issuer{jwksIssuer(big.URL)}, auth.WithHTTPClient(big.Client()))
	mustRefuse(t, v, edToken(t, k.ed, "k1"), auth.ReasonUnknownKey)
}

// TestJWKSSlowEndpointBounded: an endpoint that never answers costs a request
// at most the fetch timeout, and the token is refused.
func TestJWKSSlowEndpointBounded(t *testing.T) {
	k := keys()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	v := newVerifier(t, []auth.Issuer{jwksIssuer(slow.URL)}, auth.WithHTTPClient(slow.Client()),
		auth.WithFetchTimeout(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := v.Verify(ctx, edToken(t, k.ed, "k1"))
	if reasonOf(err) != auth.ReasonUnknownKey {
		t.Fatalf("err %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Verify waited for the test's own deadline, not the fetch timeout")
	}
}

// TestJWKSRedirectToAnotherHostRefused: a JWKS endpoint that redirects
// elsewhere (an open redirect, a compromised path) cannot choose the keys.
func TestJWKSRedirectToAnotherHostRefused(t *testing.T) {
	k := keys()
	evil := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}))
	home := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}))
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, evil.URL+"/jwks.json", http.StatusFound)
		case "/near":
			http.Redirect(w, r, "/jwks.json", http.StatusMovedPermanently)
		case "/jwks.json":
			home.Config.Handler.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(redirector.Close)

	away := newVerifier(t, []auth.Issuer{jwksIssuer(redirector.URL + "/away")}, auth.WithHTTPClient(redirector.Client()))
	mustRefuse(t, away, edToken(t, k.ed, "k1"), auth.ReasonUnknownKey)
	if n := evil.fetches.Load(); n != 0 {
		t.Errorf("the other host was fetched %d times", n)
	}
	near := newVerifier(t, []auth.Issuer{jwksIssuer(redirector.URL + "/near")}, auth.WithHTTPClient(redirector.Client()))
	mustVerify(t, near, edToken(t, k.ed, "k1"))
}

// TestJWKSKeyBoundToItsAlgorithm: a JWK with alg verifies only that algorithm;
// one without alg only the algorithms of its key type; encryption keys never.
func TestJWKSKeyBoundToItsAlgorithm(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, jwks(t,
		jwkSpec{kid: "rs", alg: "RS256", key: &k.rsa.PublicKey},
		jwkSpec{kid: "es", key: &k.ec.PublicKey},
		jwkSpec{kid: "enc", use: "enc", key: k.ed.Public()},
		jwkSpec{kid: "ed", use: "sig", key: k.ed.Public()},
	))
	v := newVerifier(t, []auth.Issuer{jwksIssuer(s.URL, "RS256", "PS256", "ES256", "EdDSA")}, auth.WithHTTPClient(s.Client()))
	tests := []struct {
		name   string
		tok    string
		reason auth.Reason
	}{
		{name: "RS256 under the RS256 key", tok: sign(t, jwt.SigningMethodRS256, k.rsa, "rs", claims(nil), nil)},
		{name: "PS256 under the RS256 key", tok: sign(t, jwt.SigningMethodPS256, k.rsa, "rs", claims(nil), nil), reason: auth.ReasonAlgorithm},
		{name: "ES256 under the RS256 key", tok: sign(t, jwt.SigningMethodES256, k.ec, "rs", claims(nil), nil), reason: auth.ReasonAlgorithm},
		{name: "ES256 under the alg-less EC key", tok: sign(t, jwt.SigningMethodES256, k.ec, "es", claims(nil), nil)},
		{name: "RS256 under the alg-less EC key", tok: sign(t, jwt.SigningMethodRS256, k.rsa, "es", claims(nil), nil), reason: auth.ReasonAlgorithm},
		{name: "EdDSA under the encryption key", tok: sign(t, jwt.SigningMethodEdDSA, k.ed, "enc", claims(nil), nil), reason: auth.ReasonUnknownKey},
		{name: "EdDSA under the signing key", tok: sign(t, jwt.SigningMethodEdDSA, k.ed, "ed", claims(nil), nil)},
		{name: "HS256 with the RSA key's PEM", tok: sign(t, jwt.SigningMethodHS256, k.rsaPEM, "rs", claims(nil), nil), reason: auth.ReasonAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.tok)
			if reasonOf(err) != tt.reason || (tt.reason == "" && err != nil) {
				t.Fatalf("err %v, want reason %q", err, tt.reason)
			}
		})
	}
}

// TestVerifierCloseIdempotentStopsFetching: after Close, fetched keys still
// verify, unknown kids fetch nothing, and no goroutine is left (goleak).
func TestVerifierCloseIdempotentStopsFetching(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}))
	v, err := auth.NewVerifier([]auth.Issuer{jwksIssuer(s.URL)}, auth.WithHTTPClient(s.Client()),
		auth.WithClock(fixedClock), auth.WithRefresh(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, v, edToken(t, k.ed, "k1"))
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	n := s.fetches.Load()
	mustRefuse(t, v, edToken(t, k.ed, "k2"), auth.ReasonUnknownKey)
	mustVerify(t, v, edToken(t, k.ed, "k1"))
	if got := s.fetches.Load(); got != n {
		t.Errorf("%d fetches after Close", got-n)
	}
}

// TestVerifierDefaultClientClosed: without WithHTTPClient the Verifier owns
// its transport and Close leaves no connection goroutine behind (goleak).
func TestVerifierDefaultClientClosed(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}))
	v, err := auth.NewVerifier([]auth.Issuer{jwksIssuer(s.URL)}, auth.WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, v, edToken(t, k.ed, "k1"))
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestJWKSFetchOutlivesTheRequestThatStartedIt: a client that hangs up right
// after its unknown kid started a fetch cannot waste the fetch (and with it the
// interval's allowance): the fetch completes and serves the next request.
func TestJWKSFetchOutlivesTheRequestThatStartedIt(t *testing.T) {
	k := keys()
	first := jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()})
	rotated := jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}, jwkSpec{kid: "k2", key: k.ed2.Public()})
	var fetches atomic.Int64
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fetches.Add(1) == 1 {
			_, _ = w.Write(first)
			return
		}
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(rotated)
	}))
	t.Cleanup(srv.Close)
	v := newVerifier(t, []auth.Issuer{jwksIssuer(srv.URL)}, auth.WithHTTPClient(srv.Client()))
	mustVerify(t, v, edToken(t, k.ed, "k1"))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, edToken(t, k.ed2, "k2"))
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no fetch for the unknown kid")
	}
	cancel() // the client hangs up while the fetch runs
	select {
	case err := <-done:
		if reasonOf(err) != auth.ReasonUnknownKey {
			t.Fatalf("err %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Verify did not return when its context ended")
	}
	close(release)
	mustVerify(t, v, edToken(t, k.ed2, "k2"))
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}

// TestJWKSKeySetsAgeWhileTheEndpointFails: KeySets says when each JWKS issuer's
// set was last fetched and how many keys it holds. A failed fetch leaves the
// time as it was, so the set's age grows while its endpoint fails; the next
// good fetch renews it. An issuer whose endpoint never answered holds no keys
// and no time.
func TestJWKSKeySetsAgeWhileTheEndpointFails(t *testing.T) {
	k := keys()
	s := newJWKSServer(t, jwks(t, jwkSpec{kid: "k1", key: k.ed.Public()}, jwkSpec{kid: "k2", key: k.ed2.Public()}))
	down := newJWKSServer(t, nil)
	down.set(http.StatusServiceUnavailable, []byte("down"))
	var now atomic.Int64
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	other := auth.Issuer{Issuer: "https://other.test", Audiences: []string{testAudience},
		Algorithms: []string{"EdDSA"}, JWKSURL: down.URL + "/jwks.json"}
	v := newVerifier(t, []auth.Issuer{jwksIssuer(s.URL + "/jwks.json"), other},
		auth.WithHTTPClient(s.Client()), auth.WithClock(clock))
	mustVerify(t, v, edToken(t, k.ed, "k1")) // waits for the first fetch
	want := []auth.KeySet{
		{Issuer: testIssuer, URL: s.URL + "/jwks.json", Fetched: t0, Keys: 2},
		{Issuer: "https://other.test", URL: down.URL + "/jwks.json"},
	}
	slices.SortFunc(want, func(a, b auth.KeySet) int { return strings.Compare(a.Issuer, b.Issuer) })
	check := func(step string) {
		t.Helper()
		got := v.KeySets()
		if !slices.EqualFunc(got, want, func(a, b auth.KeySet) bool {
			return a.Issuer == b.Issuer && a.URL == b.URL && a.Fetched.Equal(b.Fetched) && a.Keys == b.Keys
		}) {
			t.Fatalf("%s: KeySets() = %+v, want %+v", step, got, want)
		}
	}
	check("after the first fetch")

	s.set(http.StatusServiceUnavailable, []byte("down"))
	now.Add(int64(auth.DefaultUnknownKidInterval))
	before := s.fetches.Load()
	mustRefuse(t, v, edToken(t, k.ed, "k3"), auth.ReasonUnknownKey) // a fetch, which fails
	if s.fetches.Load() == before {
		t.Fatal("the unknown kid caused no fetch")
	}
	check("after a failed fetch") // still t0: the set is DefaultUnknownKidInterval old

	s.set(http.StatusOK, jwks(t, jwkSpec{kid: "k3", key: k.ed.Public()}))
	now.Add(int64(auth.DefaultUnknownKidInterval))
	mustVerify(t, v, edToken(t, k.ed, "k3"))
	for i := range want {
		if want[i].Issuer == testIssuer {
			want[i].Fetched, want[i].Keys = clock(), 1
		}
	}
	check("after a good fetch")
}
