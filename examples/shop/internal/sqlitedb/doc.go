// Package sqlitedb opens the SQLite databases of the shop's services: one file
// per service in its data directory, through the pure-Go driver
// modernc.org/sqlite, in WAL mode with a busy timeout, migrated at start.
package sqlitedb
