// Package users is the shop's users service: registration with argon2id
// password hashes, log-in that issues EdDSA (Ed25519) access tokens, the
// caller's own record, and the JWKS that every other service verifies those
// tokens with.
//
// The key is kept in the data directory (LoadOrCreateKey) so that tokens
// survive a restart. Users live behind Store; OpenSQLite is the SQLite one.
package users
