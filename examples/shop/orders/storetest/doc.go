// Package storetest is the contract every [orders.Store] passes: the SQLite
// and the PostgreSQL stores run it in their tests, and so should a store that
// takes their place.
package storetest
