// Package storeurl reads the database URL a shop service is given and tells
// which store it names: SQLite in a file, or PostgreSQL.
//
// Accepted forms:
//
//	/var/lib/shop              a directory: SQLite, the service's file in it (users.db, ...)
//	sqlite:/var/lib/shop       the same
//	sqlite:/var/lib/users.db   SQLite in that file (a path ending in .db)
//	sqlite:data                relative paths too; sqlite:///abs and sqlite://rel are read as paths
//	postgres://user:pw@host:5432/shop?sslmode=disable   PostgreSQL (postgresql:// too)
package storeurl
