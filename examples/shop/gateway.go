package shop

import (
	"github.com/pier-go/pier/gateway"
)

// Routes is the gateway's route table. The gateway verifies the bearer token
// where a route asks for one (AuthToken) and passes it on; every service
// verifies it again, so a route left open here (registration, the catalogue)
// is still closed where its service says so (GET /api/users/{id}, POST
// /api/products). The reservation, charge and refund routes of products and
// payments are not routed: only orders calls them.
func Routes(loginRate float64, loginBurst int) []gateway.Route {
	return []gateway.Route{
		{Name: "users", Prefix: "/api/users", Service: Users, Rewrite: "/users", Auth: gateway.AuthNone},
		{Name: "me", Prefix: "/api/users/me", Service: Users, Rewrite: "/users/me", Methods: []string{"GET"}},
		{Name: "login", Prefix: "/api/login", Service: Users, Rewrite: "/login", Methods: []string{"POST"}, Auth: gateway.AuthNone,
			// Password guessing costs an attacker an argon2id hash on our side
			// per try: bound the tries per client address.
			RateLimit: &gateway.RateLimit{Rate: loginRate, Burst: loginBurst, Key: gateway.RateKeyIP}},
		{Name: "products", Prefix: "/api/products", Service: Products, Rewrite: "/products", Auth: gateway.AuthNone},
		{Name: "orders", Prefix: "/api/orders", Service: Orders, Rewrite: "/orders"},
	}
}
