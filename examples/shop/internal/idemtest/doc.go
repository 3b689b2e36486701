// Package idemtest is the contract the shop's durable idempotency stores
// (sqlidem on SQLite, pgidem on PostgreSQL) pass: the compare-and-set of
// Claim, Complete and Release, leases and retention on an injected clock,
// keys that outlive a restart, and one claim out of many concurrent ones.
package idemtest
