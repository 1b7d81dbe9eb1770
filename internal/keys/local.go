package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RootKeySize is the size of a local root key in bytes.
const RootKeySize = 32

// Local is a root key held in a local file. It is safe for concurrent use.
type Local struct {
	id   string
	aead cipher.AEAD
}

// LoadOrCreateLocal reads the root key at path, creating a new random one
// (mode 0600) when the file does not exist and create is true.
func LoadOrCreateLocal(path string, create bool) (*Local, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key = make([]byte, RootKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate root key: %w", err)
		}
		if err := writeFileSync(path, key, 0o600); err != nil {
			return nil, fmt.Errorf("write root key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read root key: %w", err)
	}
	if len(key) != RootKeySize {
		return nil, fmt.Errorf("root key %s holds %d bytes, want %d", path, len(key), RootKeySize)
	}
	return NewLocal(key)
}

// NewLocal returns a provider for a 32-byte root key.
func NewLocal(key []byte) (*Local, error) {
	if len(key) != RootKeySize {
		return nil, fmt.Errorf("root key holds %d bytes, want %d", len(key), RootKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("root key cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("root key gcm: %w", err)
	}
	// The id names the key version without revealing anything of the key.
	sum := sha256.Sum256(append([]byte("coligo root key id\x00"), key...))
	return &Local{id: "local-" + hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// Name implements seal.Wrapper.
func (l *Local) Name() string { return "local" }

// KeyID is the id of this root key version.
func (l *Local) KeyID() string { return l.id }

// Wrap implements seal.Wrapper.
func (l *Local) Wrap(_ context.Context, dek, aad []byte) (string, []byte, error) {
	nonce := make([]byte, l.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("generate nonce: %w", err)
	}
	return l.id, l.aead.Seal(nonce, nonce, dek, aad), nil
}

// Unwrap implements seal.Wrapper.
func (l *Local) Unwrap(_ context.Context, keyID string, wrapped, aad []byte) ([]byte, error) {
	if keyID != l.id {
		return nil, fmt.Errorf("dek was wrapped by root key %s, this server holds %s", keyID, l.id)
	}
	n := l.aead.NonceSize()
	if len(wrapped) < n {
		return nil, errors.New("wrapped dek is too short")
	}
	dek, err := l.aead.Open(nil, wrapped[:n], wrapped[n:], aad)
	if err != nil {
		return nil, errors.New("wrapped dek does not open with the root key")
	}
	return dek, nil
}

// writeFileSync creates path with perm, writes data and syncs file and folder.
func writeFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
