// Package pgdb opens the PostgreSQL databases of the shop's services through
// github.com/jackc/pgx/v5's pool, each service in a schema of its own, migrated
// at start.
//
// Every service keeps its tables in a schema named after it (users, products,
// orders, payments), set as the pool's search_path, so the services may share
// one database (as the Compose file does) or have one each, and two services
// that both keep idempotency keys do not share a table.
package pgdb
