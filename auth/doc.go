// Package auth verifies bearer tokens (JWTs, RFC 7519) for services and for the
// gateway: [Verifier] checks a token against configured [Issuer]s, [Require] is
// middleware that lets only verified requests through, and the token's [Claims]
// reach the handler through the request's context ([FromContext]).
//
// Signatures and claims are checked by github.com/golang-jwt/jwt/v5; JSON Web
// Key Sets are fetched and parsed by github.com/MicahParks/jwkset. The package
// imports neither the service nor the discovery package: a Verifier fetches
// JWKS with the *http.Client it is given, so a service passes its discovery
// client and names the issuer by service name:
//
//	v, err := auth.NewVerifier([]auth.Issuer{{
//		Issuer:     "https://shop.example/users",
//		Audiences:  []string{"shop"},
//		Algorithms: []string{"EdDSA"},
//		JWKSURL:    "http://users/.well-known/jwks.json",
//	}}, auth.WithHTTPClient(svc.Client()))
//	if err != nil {
//		return err
//	}
//	defer v.Close()
//	svc.Handle("GET /orders/{id}", auth.Require(v, auth.WithScopes(auth.AnyScope("orders:read")))(http.HandlerFunc(getOrder)))
//
// # What is refused
//
// Each rule answers a known attack on JWT verifiers:
//
//   - tokens over [MaxTokenSize] (8 KiB), before any parsing (CVE-2025-30204:
//     a token of many dots made golang-jwt allocate in proportion to it);
//   - alg "none" in any casing, and any algorithm outside the issuer's
//     allowlist (the 2015 "alg: none" bypass);
//   - a kid that names a key bound to another algorithm, and HMAC keys that
//     are not []byte secrets: an RSA public key can never serve as an HS256
//     secret (key confusion, CVE-2015-9235 and CVE-2016-10555);
//   - JOSE headers jku, x5u and jwk, which would let the sender choose the key,
//     and crit, whose extensions this package does not implement (RFC 7515);
//   - a missing exp, a passed exp, a future nbf or iat, with at most
//     [MaxLeeway] of clock skew;
//   - an iss other than the issuer whose keys verified the signature (the
//     unverified iss only chooses the keys), and an aud (string or array,
//     CVE-2020-26160) without one of the issuer's Audiences; aud [] is refused;
//   - more than one Authorization header, another scheme, control characters.
//
// Every refusal is an [*Error] whose [Reason] names the rule, for metrics.
//
// # JWKS
//
// Each JWKS issuer's set is fetched when the Verifier is created, then every
// [DefaultRefresh] (1 h); while it has never been fetched, the fetch is retried
// from 1 s up to every [DefaultUnknownKidInterval]. A token with an unknown kid
// fetches the set again at most once per [DefaultUnknownKidInterval] (5 min) per
// issuer, and tokens arriving meanwhile wait for that one fetch, so a rotated
// key verifies after one fetch and a flood of random kids costs one. A failed
// fetch keeps the last good keys. Fetches are bounded to [DefaultFetchTimeout]
// (10 s) and [DefaultMaxJWKSSize] (1 MiB), and may not be redirected to another
// host. Until a set has been fetched every token of that issuer is refused.
package auth
