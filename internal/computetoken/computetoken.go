package computetoken

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/core"
)

// Where instances find their token, as in Code Engine.
const (
	Dir  = "/var/run/secrets/codeengine.cloud.ibm.com/compute-resource-token"
	File = "token"
	Path = Dir + "/" + File
)

// Label marks an instance that holds a token, with the token's subject:
// the refresher renews the tokens of the instances so marked.
const Label = "coligo.compute-token"

// DefaultLife is how long a token is valid; the refresher renews each
// instance's token every sixth of it.
const DefaultLife = time.Hour

// Prefix starts every compute resource token ("coligo_", so that secret
// scanners find them, then "cr.").
const Prefix = "coligo_cr."

// Role is what a compute resource token may do in its project.
const Role = core.RoleWriter

// KindKey is the store kind of a project's signing key (one record, "key").
const KindKey = "compute_token_key"

// Claims are what a token says.
type Claims struct {
	Project string    // the project's id
	Subject string    // e.g. "app/web", "jobrun/nightly-1"
	Expires time.Time // the token is refused from then on
}

type wire struct {
	P string `json:"p"`
	S string `json:"s"`
	E int64  `json:"e"`
}

// Mint makes the token of claims under key.
func Mint(key []byte, c Claims) string {
	body, _ := json.Marshal(wire{P: c.Project, S: c.Subject, E: c.Expires.Unix()})
	b := base64.RawURLEncoding.EncodeToString(body)
	return Prefix + b + "." + base64.RawURLEncoding.EncodeToString(mac(key, b))
}

func mac(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(Prefix + body))
	return m.Sum(nil)
}

// ErrInvalid is a token that is not one, is not its key's or has expired;
// it says nothing more.
var ErrInvalid = errors.New("compute resource token is not valid")

// Peek reads a token's claims without checking them: which project's key
// checks it.
func Peek(token string) (Claims, error) {
	body, _, ok := strings.Cut(strings.TrimPrefix(token, Prefix), ".")
	if !strings.HasPrefix(token, Prefix) || !ok || len(token) > 4096 {
		return Claims{}, ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return Claims{}, ErrInvalid
	}
	var w wire
	if json.Unmarshal(raw, &w) != nil || w.P == "" || w.S == "" {
		return Claims{}, ErrInvalid
	}
	return Claims{Project: w.P, Subject: w.S, Expires: time.Unix(w.E, 0)}, nil
}

// Verify checks a token against its project's key at now and returns its
// claims.
func Verify(key []byte, token string, now time.Time) (Claims, error) {
	c, err := Peek(token)
	if err != nil {
		return c, err
	}
	body, sig, _ := strings.Cut(strings.TrimPrefix(token, Prefix), ".")
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, body)) || !now.Before(c.Expires) {
		return Claims{}, ErrInvalid
	}
	return c, nil
}

// Store is what the keys need of the store.
type Store interface {
	Get(ctx context.Context, ref core.Ref) (core.Record, error)
	Create(ctx context.Context, ref core.Ref, value []byte, limit int) (core.Record, error)
}

// Keys holds the projects' signing keys, read from the store (and made
// there the first time) and then kept in memory.
type Keys struct {
	st    Store
	mu    sync.Mutex
	cache map[string][]byte
}

// NewKeys returns the keys of st.
func NewKeys(st Store) *Keys { return &Keys{st: st, cache: map[string][]byte{}} }

// Key is the signing key of a project, made the first time it is asked
// for; create is false where only a check needs it (no key: no token).
func (k *Keys) Key(ctx context.Context, project string, create bool) ([]byte, error) {
	k.mu.Lock()
	key := k.cache[project]
	k.mu.Unlock()
	if key != nil {
		return key, nil
	}
	ref := core.Ref{Project: project, Kind: KindKey, Name: "key"}
	rec, err := k.st.Get(ctx, ref)
	if errors.Is(err, core.ErrNotFound) && create {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(core.SecretData{"key": base64.StdEncoding.EncodeToString(fresh)})
		if rec, err = k.st.Create(ctx, ref, b, 0); errors.Is(err, core.ErrExists) {
			rec, err = k.st.Get(ctx, ref)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the compute resource token key of project %s: %w", project, err)
	}
	var d core.SecretData
	if err := json.Unmarshal(rec.Value, &d); err != nil {
		return nil, fmt.Errorf("the compute resource token key of project %s: %w", project, err)
	}
	if key, err = base64.StdEncoding.DecodeString(d["key"]); err != nil || len(key) != 32 {
		return nil, fmt.Errorf("the compute resource token key of project %s is damaged", project)
	}
	k.mu.Lock()
	k.cache[project] = key
	k.mu.Unlock()
	return key, nil
}

// Forget drops a project's key from memory (its project was deleted).
func (k *Keys) Forget(project string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.cache, project)
}

// Check verifies a token with its project's key.
func (k *Keys) Check(ctx context.Context, token string, now time.Time) (Claims, error) {
	c, err := Peek(token)
	if err != nil {
		return c, err
	}
	key, err := k.Key(ctx, c.Project, false)
	if errors.Is(err, core.ErrNotFound) {
		return Claims{}, ErrInvalid
	}
	if err != nil {
		return Claims{}, err
	}
	return Verify(key, token, now)
}

// Issue makes a token for subject in project, valid for life from now.
func (k *Keys) Issue(ctx context.Context, project, subject string, now time.Time, life time.Duration) (string, error) {
	key, err := k.Key(ctx, project, true)
	if err != nil {
		return "", err
	}
	return Mint(key, Claims{Project: project, Subject: subject, Expires: now.Add(life)}), nil
}
