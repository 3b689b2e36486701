// Package storetest is the contract every [products.Store] passes: the SQLite
// and the PostgreSQL stores run it in their tests, and so should a store that
// takes their place.
package storetest
