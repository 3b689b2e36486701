package users

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the name of the signing key in the data directory.
const KeyFile = "users-signing-key.pem"

// LoadOrCreateKey returns the Ed25519 signing key kept in dir/KeyFile,
// creating it (mode 0600, in a directory of mode 0700) the first time, so that
// tokens stay valid across restarts.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	return LoadOrCreateKeyFile(filepath.Join(dir, KeyFile))
}

// LoadOrCreateKeyFile returns the Ed25519 signing key kept at path, a PKCS #8
// PEM file ("PRIVATE KEY", as `openssl genpkey -algorithm ed25519` writes
// it), creating it (mode 0600, in a directory of mode 0700) when it does not
// exist. Instances that share the file share the key.
func LoadOrCreateKeyFile(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(filepath.Dir(path), path)
	}
	if err != nil {
		return nil, fmt.Errorf("users: signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("users: signing key %s: no PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("users: signing key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("users: signing key %s: %T, want Ed25519", path, k)
	}
	return key, nil
}

func createKey(dir, path string) (ed25519.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("users: signing key: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("users: signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("users: signing key: %w", err)
	}
	// O_EXCL: two processes starting at once must not overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("users: signing key: %w", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("users: signing key %s: %w", path, err)
	}
	return key, nil
}

// KeyID returns the RFC 7638 thumbprint of pub, the kid of its tokens.
func KeyID(pub ed25519.PublicKey) string {
	// The canonical JWK members in lexicographic order, as RFC 8037 section 2 shows.
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
