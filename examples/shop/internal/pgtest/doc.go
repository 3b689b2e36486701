// Package pgtest gives each test a fresh PostgreSQL database on the server at
// PIER_POSTGRES_URL (make test starts a throwaway one with
// scripts/start-postgres.sh).
//
// With PIER_REQUIRE_POSTGRES=1 (as make test sets it) a missing URL fails the
// test; a URL whose server does not answer always fails it. Only a developer's
// plain `go test`, with neither variable set, skips the PostgreSQL tests.
package pgtest
