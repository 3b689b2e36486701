package dns_test

import (
	"fmt"

	"github.com/pier-go/pier/discovery/dns"
)

// A Resolver for the headless Services of the namespace default: Resolve(ctx,
// "users") looks up _http._tcp.users.default.svc.cluster.local in the
// background every 5 s. New makes no lookup; it only checks the options.
func ExampleNew() {
	r, err := dns.New(
		dns.WithDomain("default.svc.cluster.local"),
		dns.WithSRV("http", "tcp"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	fmt.Println("refresh:", dns.DefaultRefresh)

	// A/AAAA mode needs a port; an invalid option is reported by New.
	_, err = dns.New(dns.WithDomain("default.svc.cluster.local"), dns.WithPort(70000))
	fmt.Println(err)
	// Output:
	// refresh: 5s
	// dns: WithPort(70000): want a port from 1 to 65535
}
