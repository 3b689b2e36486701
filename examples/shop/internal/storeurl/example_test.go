package storeurl_test

import (
	"fmt"

	"github.com/pier-go/pier/examples/shop/internal/storeurl"
)

func ExampleParse() {
	for _, dsn := range []string{"/var/lib/shop", "sqlite:/srv/accounts.db", "postgres://shop@db:5432/shop"} {
		loc, err := storeurl.Parse(dsn, "users.db")
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch loc.Kind {
		case storeurl.SQLite:
			fmt.Println("SQLite:", loc.Dir, loc.File)
		case storeurl.Postgres:
			fmt.Println("PostgreSQL:", loc.URL)
		}
	}
	_, err := storeurl.Parse("mysql://root@db/shop", "users.db")
	fmt.Println(err)
	// Output:
	// SQLite: /var/lib/shop users.db
	// SQLite: /srv accounts.db
	// PostgreSQL: postgres://shop@db:5432/shop
	// storeurl: database URL "mysql://xxxxx@db/shop": unknown scheme "mysql" (want sqlite: or postgres://)
}
