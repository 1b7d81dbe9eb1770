package seal

import (
	"bytes"
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/core"
)

const (
	formatVersion = 1
	dekSize       = 32
	nonceSize     = 12
)

// Wrapper is a root key that wraps and unwraps DEKs. Implementations: the
// local key file (package keys) and, later, KMS v2 plugins.
//
// Wrap and Unwrap must be safe for concurrent use. Unwrap returns an error
// matching core.ErrUnavailable when the key cannot be used right now (revoked,
// plugin down), so that callers can tell that from corrupt data.
type Wrapper interface {
	// Name is the provider's configured name, e.g. "local".
	Name() string
	// Wrap encrypts dek under the current root key version, binding aad.
	Wrap(ctx context.Context, dek, aad []byte) (keyID string, wrapped []byte, err error)
	// Unwrap decrypts a DEK wrapped under keyID.
	Unwrap(ctx context.Context, keyID string, wrapped, aad []byte) ([]byte, error)
	// KeyID is the id of the key version Wrap uses now.
	KeyID(ctx context.Context) (string, error)
}

// WrappedDEK is the only form in which a DEK is ever stored.
type WrappedDEK struct {
	ID        string    `json:"id"`       // random; names the DEK in sealed records
	Provider  string    `json:"provider"` // the Wrapper's name
	KeyID     string    `json:"key_id"`   // the root key version that wrapped it
	Wrapped   []byte    `json:"wrapped"`
	CreatedAt time.Time `json:"created_at"`
}

// Sealer seals records under per-project DEKs. It is safe for concurrent use.
type Sealer struct {
	wrappers map[string]Wrapper
	def      string
	cache    *lru
}

// New returns a Sealer whose new DEKs are wrapped by def; others may unwrap
// DEKs they wrapped earlier. cacheSize bounds the number of unwrapped DEKs
// held in memory.
func New(def Wrapper, cacheSize int, others ...Wrapper) *Sealer {
	s := &Sealer{wrappers: map[string]Wrapper{def.Name(): def}, def: def.Name(), cache: newLRU(cacheSize)}
	for _, w := range others {
		s.wrappers[w.Name()] = w
	}
	return s
}

// NewDEK creates a DEK for a project, wrapped by the named provider (the
// default when ""), and returns it encoded for storage, together with what
// the project shows of it.
func (s *Sealer) NewDEK(ctx context.Context, projectID, provider string) ([]byte, core.Encryption, error) {
	if provider == "" {
		provider = s.def
	}
	w, ok := s.wrappers[provider]
	if !ok {
		return nil, core.Encryption{}, core.Invalid("encryption", "provider %q is not configured", provider)
	}
	dek := make([]byte, dekSize)
	defer clear(dek) // the plaintext DEK lives on only inside the cached cipher
	if _, err := rand.Read(dek); err != nil {
		return nil, core.Encryption{}, fmt.Errorf("generate dek: %w", err)
	}
	keyID, wrapped, err := w.Wrap(ctx, dek, dekAAD(projectID))
	if err != nil {
		return nil, core.Encryption{}, &core.KeyError{Provider: w.Name(), KeyID: "(current)", Err: err}
	}
	idb := make([]byte, 8)
	if _, err := rand.Read(idb); err != nil {
		return nil, core.Encryption{}, fmt.Errorf("generate dek id: %w", err)
	}
	now := time.Now().UTC()
	rec := WrappedDEK{ID: hex.EncodeToString(idb), Provider: w.Name(), KeyID: keyID, Wrapped: wrapped, CreatedAt: now}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, core.Encryption{}, fmt.Errorf("encode dek: %w", err)
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, core.Encryption{}, err
	}
	s.cache.put(string(b), rec.ID, w.Name(), aead)
	return b, core.Encryption{Provider: w.Name(), KeyID: keyID, KeyVersion: 1, DEKCreatedAt: now}, nil
}

// Rewrap wraps a project's DEK again with its provider's current key
// version when it was wrapped by another, keeping the DEK and its id, so
// that no record needs sealing again. It returns the new stored form and
// key id, and whether anything changed.
func (s *Sealer) Rewrap(ctx context.Context, projectID string, wrappedDEK []byte) ([]byte, string, bool, error) {
	var rec WrappedDEK
	if err := json.Unmarshal(wrappedDEK, &rec); err != nil {
		return nil, "", false, fmt.Errorf("decode wrapped dek: %w", ErrCorrupt)
	}
	w, ok := s.wrappers[rec.Provider]
	if !ok {
		return nil, "", false, &core.KeyError{Provider: rec.Provider, KeyID: rec.KeyID, Err: errors.New("the provider is not configured on this server")}
	}
	cur, err := w.KeyID(ctx)
	if err != nil {
		return nil, "", false, &core.KeyError{Provider: rec.Provider, KeyID: "(current)", Err: err}
	}
	if cur == rec.KeyID {
		return wrappedDEK, cur, false, nil
	}
	dek, err := w.Unwrap(ctx, rec.KeyID, rec.Wrapped, dekAAD(projectID))
	if err != nil {
		return nil, "", false, &core.KeyError{Provider: rec.Provider, KeyID: rec.KeyID, Err: err}
	}
	defer clear(dek)
	keyID, wrapped, err := w.Wrap(ctx, dek, dekAAD(projectID))
	if err != nil {
		return nil, "", false, &core.KeyError{Provider: rec.Provider, KeyID: "(current)", Err: err}
	}
	rec.KeyID, rec.Wrapped = keyID, wrapped
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, "", false, err
	}
	if aead, err := newAEAD(dek); err == nil {
		s.cache.put(string(b), rec.ID, rec.Provider, aead)
	}
	return b, keyID, true, nil
}

// DEKID is the id of a stored DEK: the same before and after a re-wrap.
func DEKID(wrappedDEK []byte) string {
	// Fast path: the stored form begins with its id (WrappedDEK's first field).
	if rest, ok := bytes.CutPrefix(wrappedDEK, []byte(`{"id":"`)); ok {
		if i := bytes.IndexByte(rest, '"'); i > 0 {
			return string(rest[:i])
		}
	}
	var rec struct {
		ID string `json:"id"`
	}
	json.Unmarshal(wrappedDEK, &rec)
	return rec.ID
}

// Seal encrypts plaintext under the project's DEK with aad bound to it.
func (s *Sealer) Seal(ctx context.Context, projectID string, wrappedDEK, aad, plaintext []byte) ([]byte, error) {
	aead, dekID, err := s.key(ctx, projectID, wrappedDEK)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 2+len(dekID)+nonceSize+len(plaintext)+aead.Overhead())
	out = append(out, formatVersion, byte(len(dekID)))
	out = append(out, dekID...)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// ErrCorrupt is returned by Open for a sealed value that is malformed or fails
// authentication (tampered, moved to another location, or another key).
var ErrCorrupt = errors.New("sealed value is corrupt or was not sealed for this location")

// Open decrypts a value that Seal produced for the same project and aad.
func (s *Sealer) Open(ctx context.Context, projectID string, wrappedDEK, aad, sealed []byte) ([]byte, error) {
	dekID, nonce, ct, err := Parse(sealed)
	if err != nil {
		return nil, err
	}
	aead, want, err := s.key(ctx, projectID, wrappedDEK)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(dekID, []byte(want)) {
		return nil, fmt.Errorf("sealed under dek %x, project has %s: %w", dekID, want, ErrCorrupt)
	}
	pt, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// Parse splits a sealed value into its parts without decrypting it.
func Parse(sealed []byte) (dekID, nonce, ciphertext []byte, err error) {
	if len(sealed) < 2 {
		return nil, nil, nil, fmt.Errorf("%d bytes is too short: %w", len(sealed), ErrCorrupt)
	}
	if sealed[0] != formatVersion {
		return nil, nil, nil, fmt.Errorf("unknown format version %d: %w", sealed[0], ErrCorrupt)
	}
	n := int(sealed[1])
	if len(sealed) < 2+n+nonceSize+16 {
		return nil, nil, nil, fmt.Errorf("%d bytes is too short: %w", len(sealed), ErrCorrupt)
	}
	return sealed[2 : 2+n], sealed[2+n : 2+n+nonceSize], sealed[2+n+nonceSize:], nil
}

// Forget drops a DEK from the cache; used when it is destroyed.
func (s *Sealer) Forget(wrappedDEK []byte) { s.cache.remove(string(wrappedDEK)) }

// ForgetProvider drops the cached DEKs a provider unwrapped, so that its
// revocation takes effect now: the next use asks the provider again. It
// returns how many were dropped.
func (s *Sealer) ForgetProvider(provider string) int { return s.cache.removeProvider(provider) }

func (s *Sealer) key(ctx context.Context, projectID string, wrappedDEK []byte) (cipher.AEAD, string, error) {
	if e, ok := s.cache.get(wrappedDEK); ok {
		return e.aead, e.dekID, nil
	}
	var rec WrappedDEK
	if err := json.Unmarshal(wrappedDEK, &rec); err != nil {
		return nil, "", fmt.Errorf("decode wrapped dek: %w", ErrCorrupt)
	}
	w, ok := s.wrappers[rec.Provider]
	if !ok {
		return nil, "", &core.KeyError{Provider: rec.Provider, KeyID: rec.KeyID, Err: errors.New("the provider is not configured on this server")}
	}
	dek, err := w.Unwrap(ctx, rec.KeyID, rec.Wrapped, dekAAD(projectID))
	if errors.Is(err, core.ErrUnavailable) {
		return nil, "", &core.KeyError{Provider: rec.Provider, KeyID: rec.KeyID, Err: err}
	}
	if err != nil {
		return nil, "", fmt.Errorf("unwrap dek with %s key %s: %w", rec.Provider, rec.KeyID, err)
	}
	aead, err := newAEAD(dek)
	clear(dek)
	if err != nil {
		return nil, "", err
	}
	s.cache.put(string(wrappedDEK), rec.ID, rec.Provider, aead)
	return aead, rec.ID, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new gcm: %w", err)
	}
	return aead, nil
}

// dekAAD binds a wrapped DEK to its project, so it cannot be moved.
func dekAAD(projectID string) []byte { return []byte("coligo/dek/" + projectID) }

// lru is a bounded cache of unwrapped DEKs, keyed by their wrapped form.
type lru struct {
	mu    sync.Mutex
	max   int
	order *list.List
	items map[string]*list.Element
}

type lruEntry struct {
	key      string
	dekID    string
	provider string
	aead     cipher.AEAD
}

func newLRU(max int) *lru {
	if max < 1 {
		max = 1
	}
	return &lru{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *lru) get(k []byte) (*lruEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[string(k)] // no allocation for a map lookup
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry), true
}

func (c *lru) put(k, dekID, provider string, a cipher.AEAD) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry{key: k, dekID: dekID, provider: provider, aead: a})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry).key)
	}
}

// removeProvider drops every DEK a provider unwrapped.
func (c *lru) removeProvider(provider string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, e := range c.items {
		if e.Value.(*lruEntry).provider == provider {
			c.order.Remove(e)
			delete(c.items, k)
			n++
		}
	}
	return n
}

func (c *lru) remove(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.Remove(e)
		delete(c.items, k)
	}
}
