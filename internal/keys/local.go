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
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/coligo/coligo/internal/core"
)

// RootKeySize is the size of a local root key in bytes.
const RootKeySize = 32

// Local is a root key held in a local file, with the versions it replaced
// kept in an archive folder so that DEKs they wrapped can be re-wrapped. It
// is safe for concurrent use.
type Local struct {
	mu      sync.RWMutex
	cur     *rootVersion
	all     map[string]*rootVersion
	path    string // the current version's file ("" when given in memory)
	archive string // folder of replaced versions, <id>.key
}

type rootVersion struct {
	id   string
	aead cipher.AEAD
}

// LoadOrCreateLocal reads the root key at path, creating a new random one
// (mode 0600) when the file does not exist and create is true, and the
// versions it replaced from archive.
//
// A key file (or archived version) that its group or others may read is
// refused: whoever reads it, with a copy of the data dir, reads every
// project.
func LoadOrCreateLocal(path, archive string, create bool) (*Local, error) {
	key, err := readKeyFile(path)
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
	l, err := NewLocal(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("root key %s: %w", path, err)
	}
	l.path, l.archive = path, archive
	entries, err := os.ReadDir(archive)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read root key archive: %w", err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".key" {
			continue
		}
		old, err := readKeyFile(filepath.Join(archive, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read archived root key: %w", err)
		}
		v, err := newVersion(old)
		clear(old)
		if err != nil {
			return nil, fmt.Errorf("archived root key %s: %w", e.Name(), err)
		}
		l.all[v.id] = v
	}
	return l, nil
}

// LoadOrCreateKey reads a key of size bytes from path (which only its owner
// may read), creating a random one (0600, synced) when the file does not
// exist.
func LoadOrCreateKey(path string, size int) ([]byte, error) {
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, size)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		if err := writeFileSync(path, key, 0o600); err != nil {
			return nil, fmt.Errorf("write key %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if len(key) != size {
		clear(key)
		return nil, fmt.Errorf("key %s holds %d bytes, want %d", path, len(key), size)
	}
	return key, nil
}

// readKeyFile reads a key file that only its owner may read.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable or writable by its group or others (mode %04o); make it 0600 (chmod 600 %s)", path, perm, path)
	}
	return io.ReadAll(io.LimitReader(f, 1024))
}

// NewLocal returns a provider for a 32-byte root key; the caller may clear
// key afterwards.
func NewLocal(key []byte) (*Local, error) {
	v, err := newVersion(key)
	if err != nil {
		return nil, err
	}
	return &Local{cur: v, all: map[string]*rootVersion{v.id: v}}, nil
}

func newVersion(key []byte) (*rootVersion, error) {
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
	return &rootVersion{id: versionID(key), aead: aead}, nil
}

// versionID names a key version without revealing anything of the key.
func versionID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("coligo root key id\x00"))
	h.Write(key)
	return "local-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// Name implements seal.Wrapper.
func (l *Local) Name() string { return "local" }

// KeyID implements seal.Wrapper: the current version.
func (l *Local) KeyID(context.Context) (string, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cur.id, nil
}

// Rotate makes a new random root key the current version. The replaced
// version is archived (synced) before the key file is replaced, so a crash
// loses neither; DEKs are re-wrapped afterwards, in the background.
func (l *Local) Rotate() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.path == "" || l.archive == "" {
		return "", errors.New("this root key has no file to rotate")
	}
	old, err := readKeyFile(l.path)
	if err != nil {
		return "", fmt.Errorf("read root key: %w", err)
	}
	defer clear(old)
	if err := os.MkdirAll(l.archive, 0o700); err != nil {
		return "", fmt.Errorf("root key archive: %w", err)
	}
	if err := writeFileSync(filepath.Join(l.archive, versionID(old)+".key"), old, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("archive root key: %w", err)
	}
	key := make([]byte, RootKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate root key: %w", err)
	}
	v, err := newVersion(key)
	if err != nil {
		return "", err
	}
	tmp := l.path + ".new"
	os.Remove(tmp)
	if err := writeFileSync(tmp, key, 0o600); err != nil {
		return "", fmt.Errorf("write root key: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return "", fmt.Errorf("replace root key: %w", err)
	}
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		return "", err
	}
	l.cur, l.all[v.id] = v, v
	return v.id, nil
}

// Retire deletes the archived versions that wrap none of the DEKs in inUse
// and are not current: once every DEK is re-wrapped after a rotation, the
// old root key is gone from the disk too. It returns the retired ids.
func (l *Local) Retire(inUse map[string]bool) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var retired []string
	for id := range l.all {
		if id == l.cur.id || inUse[id] || l.archive == "" {
			continue
		}
		if err := os.Remove(filepath.Join(l.archive, id+".key")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return retired, fmt.Errorf("retire root key %s: %w", id, err)
		}
		delete(l.all, id)
		retired = append(retired, id)
	}
	if len(retired) > 0 {
		if err := syncDir(l.archive); err != nil {
			return retired, err
		}
	}
	return retired, nil
}

// Wrap implements seal.Wrapper with the current version.
func (l *Local) Wrap(_ context.Context, dek, aad []byte) (string, []byte, error) {
	l.mu.RLock()
	v := l.cur
	l.mu.RUnlock()
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("generate nonce: %w", err)
	}
	return v.id, v.aead.Seal(nonce, nonce, dek, aad), nil
}

// Unwrap implements seal.Wrapper with the version that wrapped the DEK.
func (l *Local) Unwrap(_ context.Context, keyID string, wrapped, aad []byte) ([]byte, error) {
	l.mu.RLock()
	v, ok := l.all[keyID]
	l.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("dek was wrapped by root key %s, which this server does not hold: %w", keyID, core.ErrUnavailable)
	}
	n := v.aead.NonceSize()
	if len(wrapped) < n {
		return nil, errors.New("wrapped dek is too short")
	}
	dek, err := v.aead.Open(nil, wrapped[:n], wrapped[n:], aad)
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
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
