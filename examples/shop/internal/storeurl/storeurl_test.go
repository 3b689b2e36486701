package storeurl

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want Location
	}{
		{"/var/lib/shop", Location{Kind: SQLite, Dir: "/var/lib/shop", File: "users.db"}},
		{"data", Location{Kind: SQLite, Dir: "data", File: "users.db"}},
		{"sqlite:/var/lib/shop", Location{Kind: SQLite, Dir: "/var/lib/shop", File: "users.db"}},
		{"sqlite:///var/lib/shop", Location{Kind: SQLite, Dir: "/var/lib/shop", File: "users.db"}},
		{"SQLite:data", Location{Kind: SQLite, Dir: "data", File: "users.db"}},
		{"sqlite:/srv/accounts.db", Location{Kind: SQLite, Dir: "/srv", File: "accounts.db"}},
		{"C:/shop", Location{Kind: SQLite, Dir: "C:/shop", File: "users.db"}},
		{"postgres://u:p@db:5432/shop?sslmode=disable", Location{Kind: Postgres, URL: "postgres://u:p@db:5432/shop?sslmode=disable"}},
		{"PostgreSQL://db/shop", Location{Kind: Postgres, URL: "PostgreSQL://db/shop"}},
	} {
		got, err := Parse(tc.dsn, "users.db")
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.dsn, got, err, tc.want)
		}
	}
}

// TestParseRefusesWithoutLeakingPasswords: a bad URL is an error that names
// what is wrong and never repeats a password.
func TestParseRefusesWithoutLeakingPasswords(t *testing.T) {
	for dsn, want := range map[string]string{
		"":                           "empty",
		"mysql://root:hunter2@db/x":  `unknown scheme "mysql"`,
		"sqlite:":                    "no path",
		"postgress://u:hunter2@db/x": `unknown scheme "postgress"`,
	} {
		_, err := Parse(dsn, "users.db")
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) error = %v; want one containing %q and no password", dsn, err, want)
		}
	}
}
