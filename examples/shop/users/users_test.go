package users

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPasswordHash(t *testing.T) {
	p := PasswordParams{Memory: 1024, Time: 1, Threads: 1}
	h := HashPassword("correct horse", p)
	if h2 := HashPassword("correct horse", p); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if ok, err := CheckPassword(h, "correct horse"); err != nil || !ok {
		t.Fatalf("right password: %v, %v", ok, err)
	}
	if ok, err := CheckPassword(h, "correct horsf"); err != nil || ok {
		t.Fatalf("wrong password: %v, %v", ok, err)
	}
	// The parameters travel with the hash: a hash made with the defaults
	// still checks after the defaults change.
	d := HashPassword("pw", DefaultPasswordParams)
	if ok, err := CheckPassword(d, "pw"); err != nil || !ok {
		t.Fatalf("default parameters: %v, %v", ok, err)
	}
	if _, err := CheckPassword("$2a$10$bcrypt", "pw"); err == nil {
		t.Fatal("a bcrypt hash was accepted as argon2id")
	}
}

// TestSigningKeyKeptPrivate: the key is created once with mode 0600 and read
// back unchanged, so tokens survive a restart.
func TestSigningKeyKeptPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("key read back differs: %v", err)
	}
	if KeyID(k1.Public().(ed25519.PublicKey)) != KeyID(k2.Public().(ed25519.PublicKey)) {
		t.Fatal("kid changed")
	}
}
