// Package products is the shop's catalogue and stock: products listed by
// cursor, created by an admin, and stock reserved and released atomically for
// a reservation id, never below zero and once per id however often asked.
// Products live behind Store; OpenSQLite is the SQLite one.
package products
