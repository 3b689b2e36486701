// Package shopauth holds the shop's token rules in one place: the issuer,
// audience and algorithm every service accepts, the admin scope, and the
// verifiers built on them with the library's auth package. Services trust
// nothing else: no identity header, no user id in a body.
package shopauth
