// Package sqlidem keeps idempotency keys in a service's SQLite database, so
// that a keyed request runs once even across a restart and across every
// process that shares the file.
package sqlidem
