// Package pgidem keeps idempotency keys in a service's PostgreSQL schema, so
// that a keyed request runs once even across a restart and across every
// instance of the service that shares the database.
package pgidem
