package shop

import (
	"context"
	"errors"
	"fmt"

	"github.com/pier-go/pier/examples/shop/internal/ids"
	"github.com/pier-go/pier/examples/shop/products"
	"github.com/pier-go/pier/examples/shop/users"
)

// The seeded users. Their passwords are demo passwords, printed by the command.
const (
	AdminEmail    = "admin@example.com"
	AliceEmail    = "alice@example.com"
	AlicePassword = "alice-password"
	BobEmail      = "bob@example.com"
	BobPassword   = "bob-password"
)

// SeedProducts are the products seeded once.
var SeedProducts = []products.NewProduct{
	{Name: "Espresso cup", PriceCents: 1200, Stock: 25},
	{Name: "Pour-over kettle", PriceCents: 4900, Stock: 10},
	{Name: "Burr grinder", PriceCents: 12900, Stock: 5},
	{Name: "Coffee beans, 1 kg", PriceCents: 2400, Stock: 100},
	{Name: "Paper filters (100)", PriceCents: 600, Stock: 200},
}

// Seed adds the demo data the first time it is called on a data directory:
// the admin (admin@example.com with adminPassword), Alice, Bob and
// SeedProducts. It reports whether it seeded; a data directory that has the
// admin already is left as it is, the admin's password included.
func (s *Shop) Seed(ctx context.Context, adminPassword string) (bool, error) {
	if _, err := s.usersStore.ByEmail(ctx, AdminEmail); err == nil {
		return false, nil
	} else if !errors.Is(err, users.ErrNotFound) {
		return false, fmt.Errorf("shop: seed: %w", err)
	}
	if _, err := SeedCatalogue(ctx, s.productsStore); err != nil {
		return false, err
	}
	if _, err := SeedUsers(ctx, s.usersStore, s.cfg.PasswordParams, adminPassword); err != nil {
		return false, err
	}
	return true, nil
}

// SeedCatalogue creates SeedProducts in store when it holds no product yet,
// and reports whether it did.
func SeedCatalogue(ctx context.Context, store products.Store) (bool, error) {
	some, err := store.List(ctx, "", 1)
	if err != nil {
		return false, fmt.Errorf("shop: seed: %w", err)
	}
	if len(some) > 0 {
		return false, nil
	}
	for _, p := range SeedProducts {
		if err := store.Create(ctx, products.Product{ID: ids.New("p"), Name: p.Name, PriceCents: p.PriceCents, Stock: p.Stock}); err != nil {
			return false, fmt.Errorf("shop: seed: %w", err)
		}
	}
	return true, nil
}

// SeedUsers registers Alice, Bob and the admin (admin@example.com with
// adminPassword), each unless its email is taken, the admin last, with
// argon2id costs p. It reports whether it created the admin; an admin that
// exists keeps its password.
func SeedUsers(ctx context.Context, store users.Store, p users.PasswordParams, adminPassword string) (bool, error) {
	if p == (users.PasswordParams{}) {
		p = users.DefaultPasswordParams
	}
	created := false
	for _, u := range []struct {
		reg   users.Registration
		admin bool
	}{
		{users.Registration{Email: AliceEmail, Password: AlicePassword, Name: "Alice"}, false},
		{users.Registration{Email: BobEmail, Password: BobPassword, Name: "Bob"}, false},
		// The admin last: its presence marks the seed as done.
		{users.Registration{Email: AdminEmail, Password: adminPassword, Name: "Admin"}, true},
	} {
		_, err := users.Register(ctx, store, p, u.reg, u.admin)
		if err != nil && !errors.Is(err, users.ErrEmailTaken) {
			return false, fmt.Errorf("shop: seed %s: %w", u.reg.Email, err)
		}
		created = u.admin && err == nil
	}
	return created, nil
}
