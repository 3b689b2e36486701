package discoverytest_test

import (
	"fmt"

	"github.com/pier-go/pier/discovery/discoverytest"
)

// Instance makes a valid instance for a registry's tests: numbered, on
// loopback, with tags and metadata to check that they round-trip.
func ExampleInstance() {
	in := discoverytest.Instance("users", 2)
	fmt.Println(in.ID, in.Service, in.Addr, in.Tags, in.Meta)
	// Output:
	// users-2 users 127.0.0.1:20002 [conformance n2] map[version:1.2.0]
}
