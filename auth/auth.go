package auth

import (
	"context"
	"slices"
	"time"
)

// MaxTokenSize is the largest bearer token, in bytes, that a [Verifier] parses.
// Larger tokens are refused with [ReasonTooLarge] before any decoding, so that a
// crafted token cannot make the parser allocate in proportion to its size
// (golang-jwt CVE-2025-30204). Real access tokens are well under 2 KiB; 8 KiB is
// also the header size most proxies accept.
const MaxTokenSize = 8 << 10

// MaxLeeway is the largest [Issuer.Leeway] that [NewVerifier] accepts.
const MaxLeeway = 60 * time.Second

// Issuer describes one token issuer that a [Verifier] trusts: which algorithms
// it signs with, with which keys, and for which audiences its tokens are meant.
//
// A token's unverified iss claim only chooses the Issuer whose keys check the
// signature; iss, aud, exp, nbf and iat are verified once the signature is.
type Issuer struct {
	// Issuer is the exact value of the iss claim. Required; unique within a
	// Verifier.
	Issuer string
	// Audiences are the aud values accepted, any of them. The token's aud (a
	// string or an array of strings) must contain at least one of them. Required,
	// non-empty, without empty entries.
	Audiences []string
	// Algorithms is the allowlist of signing algorithms (JWA names): HS256,
	// HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512
	// and EdDSA. Required. "none" is never accepted, and HMAC algorithms are not
	// accepted with a JWKSURL: a published key cannot be a shared secret.
	Algorithms []string
	// Keys are static verification keys, each bound to one algorithm. Exactly one
	// of Keys and JWKSURL is set.
	Keys []Key
	// JWKSURL is the address of the issuer's JSON Web Key Set (RFC 7517), fetched
	// with the [Verifier]'s HTTP client ([WithHTTPClient]). Through pier's
	// discovery client it may name a service: http://users/.well-known/jwks.json.
	// Exactly one of Keys and JWKSURL is set.
	JWKSURL string
	// Leeway is the clock skew allowed when checking exp, nbf and iat. The default,
	// 0, allows none; at most [MaxLeeway].
	Leeway time.Duration
}

// Key is a static verification key bound to one algorithm: a token that names
// the key's ID (kid) but another algorithm is refused.
//
// Key.Key is a []byte secret for HS256 (at least 32 bytes), HS384 (48) and
// HS512 (64); an *rsa.PublicKey of at least 2048 bits for RS* and PS*; an
// *ecdsa.PublicKey on P-256, P-384 or P-521 for ES256, ES384 and ES512; an
// ed25519.PublicKey for EdDSA. A private key is accepted in place of its public
// key; only the public half is kept.
type Key struct {
	// ID is the key ID that tokens name in their kid header. A key without an ID
	// verifies only tokens without a kid.
	ID string
	// Algorithm is the one algorithm the key verifies; it must be in the
	// Issuer's Algorithms.
	Algorithm string
	// Key is the key material, see [Key].
	Key any
}

// Claims are the claims of a verified token. A Claims is not modified after
// [Verifier.Verify] returns it and may be read from several goroutines.
type Claims struct {
	// Subject is the sub claim.
	Subject string
	// Issuer is the iss claim: one of the Verifier's [Issuer]s.
	Issuer string
	// ID is the jti claim.
	ID string
	// Audience is the aud claim, as a list.
	Audience []string
	// Scopes are the scopes the token grants: the space-separated scope claim
	// (RFC 8693, RFC 9068) or, when there is none, the scp claim (an array of
	// strings, or a space-separated string).
	Scopes []string
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
	// IssuedAt is the iat claim; zero when absent.
	IssuedAt time.Time
	// NotBefore is the nbf claim; zero when absent.
	NotBefore time.Time
	// Raw holds every claim as encoding/json decoded it (numbers are float64).
	// It must be treated as read-only.
	Raw map[string]any
}

// HasScope reports whether the token grants scope s, compared exactly.
func (c *Claims) HasScope(s string) bool {
	return c != nil && slices.Contains(c.Scopes, s)
}

type claimsKey struct{}

// NewContext returns a copy of ctx that carries c. [Require] calls it; a
// handler reads the claims back with [FromContext].
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the claims that [NewContext] (or [Require]) stored in
// ctx, and false when there are none.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Reason says why a token was refused, in a few fixed words fit for a metric
// attribute or a log field.
type Reason string

// The reasons an [Error] carries.
const (
	// ReasonMissing: no bearer token was sent (no Authorization header, or
	// another scheme).
	ReasonMissing Reason = "missing"
	// ReasonMalformed: the token is not a well-formed JWT, or a claim has the
	// wrong type, or exp is missing.
	ReasonMalformed Reason = "malformed"
	// ReasonTooLarge: the token is longer than [MaxTokenSize].
	ReasonTooLarge Reason = "too_large"
	// ReasonAlgorithm: the token's alg is not in its issuer's allowlist, or its
	// kid names a key bound to another algorithm.
	ReasonAlgorithm Reason = "algorithm"
	// ReasonSignature: the signature does not verify.
	ReasonSignature Reason = "signature"
	// ReasonUnknownKey: no key of the issuer matches the token's kid, or the
	// issuer's key set has not been fetched yet.
	ReasonUnknownKey Reason = "unknown_key"
	// ReasonExpired: exp has passed.
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: nbf or iat is in the future.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonIssuer: iss names no configured issuer.
	ReasonIssuer Reason = "issuer"
	// ReasonAudience: aud is missing, empty, or names none of the issuer's
	// audiences.
	ReasonAudience Reason = "audience"
	// ReasonScope: the token is valid but lacks the scopes a rule asks for.
	ReasonScope Reason = "scope"
	// ReasonHeader: the Authorization header is repeated or holds control
	// characters, or the token's JOSE header has jku, jwk, x5u or crit.
	ReasonHeader Reason = "header"
)

// Error is the error [Verifier.Verify], [Verifier.VerifyRequest] and [Check]
// return when they refuse a token. Reason is for metrics and logs; Err tells
// more and may name internal details (a JWKS address, a library's message), so
// it is for logs, not for the client.
type Error struct {
	Reason Reason
	Err    error
}

// Error returns "auth: <reason>: <cause>".
func (e *Error) Error() string {
	if e.Err == nil {
		return "auth: " + string(e.Reason)
	}
	return "auth: " + string(e.Reason) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func fail(r Reason, err error) *Error { return &Error{Reason: r, Err: err} }
