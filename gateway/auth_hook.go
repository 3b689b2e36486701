package gateway

import "net/http"

// authHook is how the gateway asks for tokens to be verified; [WithVerifier]
// installs the auth package's.
type authHook struct {
	// compile turns a route's scopes into the rule verify checks, once per
	// route table.
	compile func(scopes []string, all bool) any
	// verify checks r's token against the route's rule. On success it returns
	// r with the claims in its context and the token's subject; otherwise the
	// refusal.
	verify func(r *http.Request, rt *route) (*http.Request, string, *authFailure)
}

// authFailure is a refused token.
type authFailure struct {
	status    int    // 401 or 403
	reason    string // the auth package's Reason, for metrics
	detail    string // the problem's detail
	challenge string // the WWW-Authenticate header (RFC 6750)
}
