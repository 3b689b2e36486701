// Package shop runs the shop in one process: the users, products, payments
// and orders services, each a pier Service on its own loopback port, found
// through one in-memory registry, behind the gateway. cmd/shop is its command;
// the tests start it the same way.
package shop
