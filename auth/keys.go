package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// minRSABits is the smallest RSA modulus accepted, static or fetched: NIST
// SP 800-57's floor, and what RFC 7518 section 3.3 requires for RS*.
const minRSABits = 2048

// algSpec describes a JWA algorithm a Verifier accepts: the least size of its
// HMAC secret (RFC 7518 section 3.2: at least the hash size) or its ECDSA curve.
func algSpec(alg string) (hmacBytes int, curve string, ok bool) {
	switch alg {
	case "HS256":
		return 32, "", true
	case "HS384":
		return 48, "", true
	case "HS512":
		return 64, "", true
	case "ES256":
		return 0, "P-256", true
	case "ES384":
		return 0, "P-384", true
	case "ES512":
		return 0, "P-521", true
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA":
		return 0, "", true
	}
	return 0, "", false
}

func isHMAC(alg string) bool { n, _, _ := algSpec(alg); return n > 0 }

// bindKey checks that key fits alg and returns it in the form golang-jwt's
// signing method for alg expects, boxed once so that handing it out per request
// costs no allocation.
func bindKey(alg string, key any) (any, error) {
	hmacBytes, curve, ok := algSpec(alg)
	if !ok {
		return nil, fmt.Errorf("algorithm %q is not supported", alg)
	}
	if p, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = p.Public() // a private key: keep only its public half
	}
	switch {
	case hmacBytes > 0:
		b, ok := key.([]byte)
		if !ok {
			return nil, fmt.Errorf("%s needs a []byte secret, not %T", alg, key)
		}
		if len(b) < hmacBytes {
			return nil, fmt.Errorf("%s secret has %d bytes, want at least %d", alg, len(b), hmacBytes)
		}
		return slices.Clone(b), nil
	case alg[0] == 'R' || alg[0] == 'P':
		k, ok := key.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return nil, fmt.Errorf("%s needs an *rsa.PublicKey, not %T", alg, key)
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%s key has %d bits, want at least %d", alg, k.N.BitLen(), minRSABits)
		}
		return k, nil
	case alg[0] == 'E' && alg != "EdDSA":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve == nil {
			return nil, fmt.Errorf("%s needs an *ecdsa.PublicKey, not %T", alg, key)
		}
		if name := k.Curve.Params().Name; name != curve {
			return nil, fmt.Errorf("%s needs a key on %s, not %s", alg, curve, name)
		}
		return k, nil
	default: // EdDSA
		k, ok := key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("EdDSA needs an ed25519.PublicKey, not %T", key)
		}
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("EdDSA key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return slices.Clone(k), nil
	}
}

// boundKey is a key with the one algorithm it may verify.
type boundKey struct {
	alg string
	key any
}

// keySet is an immutable index of an issuer's keys. A JWKS refresh builds a new
// one and swaps it in.
type keySet struct {
	fetched time.Time // when a JWKS fetch brought it; zero for static keys
	n       int       // usable keys: a key per algorithm it may verify
	byKID   map[string][]boundKey
	// byAlg holds, per algorithm, the key (or a jwt.VerificationKeySet of keys)
	// that a token without kid is checked against.
	byAlg map[string]any
}

var (
	errUnknownKID = errors.New("no key with the token's kid")
	errNoKeys     = errors.New("no key for the token's algorithm")
	errKeyAlg     = errors.New("the token's kid names a key bound to another algorithm")
)

func newKeySet(keys []boundKey, ids []string) *keySet {
	s := &keySet{n: len(keys), byKID: make(map[string][]boundKey), byAlg: make(map[string]any)}
	perAlg := make(map[string][]jwt.VerificationKey)
	for i, k := range keys {
		if ids[i] != "" {
			s.byKID[ids[i]] = append(s.byKID[ids[i]], k)
		}
		perAlg[k.alg] = append(perAlg[k.alg], k.key)
	}
	for alg, ks := range perAlg {
		if len(ks) == 1 {
			s.byAlg[alg] = ks[0]
		} else {
			s.byAlg[alg] = jwt.VerificationKeySet{Keys: ks}
		}
	}
	return s
}

// lookup returns the key for a token with the given kid (hasKID false: none)
// and alg. It allocates nothing.
func (s *keySet) lookup(kid string, hasKID bool, alg string) (any, *Error) {
	if s == nil {
		return nil, fail(ReasonUnknownKey, errNoKeys)
	}
	if !hasKID {
		if k, ok := s.byAlg[alg]; ok {
			return k, nil
		}
		return nil, fail(ReasonUnknownKey, errNoKeys)
	}
	ks, ok := s.byKID[kid]
	if !ok {
		return nil, fail(ReasonUnknownKey, errUnknownKID)
	}
	for _, k := range ks {
		if k.alg == alg {
			return k.key, nil
		}
	}
	return nil, fail(ReasonAlgorithm, errKeyAlg)
}
