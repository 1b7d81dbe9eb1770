package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/coligo/coligo/internal/core"
)

var (
	bktMeta      = []byte("meta")
	bktProjects  = []byte("projects")
	bktNames     = []byte("project_names")
	bktSubdomain = []byte("subdomains")
	bktDEKs      = []byte("deks")
	bktTokens    = []byte("tokens")
	bktData      = []byte("data")
	keySchema    = []byte("schema")
	keyVersion   = []byte("version")
	keyCompact   = []byte("compact_pending")
)

// Sealer encrypts and decrypts records under per-project DEKs; seal.Sealer
// implements it. Seal and Open may call a key provider, so the store calls
// them outside write transactions.
type Sealer interface {
	NewDEK(ctx context.Context, projectID, provider string) ([]byte, core.Encryption, error)
	Rewrap(ctx context.Context, projectID string, wrappedDEK []byte) ([]byte, string, bool, error)
	Seal(ctx context.Context, projectID string, wrappedDEK, aad, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, projectID string, wrappedDEK, aad, sealed []byte) ([]byte, error)
	Forget(wrappedDEK []byte)
}

// Options tune a DB.
type Options struct {
	// Observe, when set, receives the duration of every store operation.
	Observe func(op string, d time.Duration)
	// AuditKey (32 bytes, held outside the database like the root key)
	// keys the audit log's name hashes and MACs its chain's ends. Without
	// one a random key is used, which holds only while the DB is open.
	AuditKey []byte
}

// DB is the bbolt store. It is safe for concurrent use.
type DB struct {
	path    string
	sealer  Sealer
	observe func(string, time.Duration)
	watch   *hub
	audit   auditKeys

	// mu guards bolt: every operation holds it shared; Compact and Close
	// hold it exclusively while they swap or close the file.
	mu   sync.RWMutex
	bolt *bolt.DB

	writers atomic.Int32 // write transactions in flight
}

// Open opens or creates the store file at path.
func Open(path string, sealer Sealer, opts Options) (*DB, error) {
	// A crash during Compact may leave its temporary file; the store file
	// itself is only ever replaced by an atomic rename.
	if err := os.Remove(path + ".compact"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale compaction file: %w", err)
	}
	b, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	obs := opts.Observe
	if obs == nil {
		obs = func(string, time.Duration) {}
	}
	return &DB{path: path, sealer: sealer, observe: obs, watch: newHub(), bolt: b, audit: newAuditKeys(opts.AuditKey)}, nil
}

func openBolt(path string) (*bolt.DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// Group commits wait at most this long for company; bbolt's 10 ms
	// default would be the latency floor of every contended write.
	b.MaxBatchDelay = time.Millisecond
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bktMeta, bktProjects, bktNames, bktSubdomain, bktDEKs, bktOldDEKs, bktTokens, bktData} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bktMeta)
		if v := meta.Get(keySchema); v != nil && string(v) != "1" {
			return fmt.Errorf("schema version %q is not supported", v)
		}
		return meta.Put(keySchema, []byte("1"))
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	return b, nil
}

// Close closes the file; pending writes have already been committed.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.watch.close()
	if db.bolt == nil {
		return nil
	}
	err := db.bolt.Close()
	db.bolt = nil
	return err
}

// Ping reports whether the store can serve reads.
func (db *DB) Ping(ctx context.Context) error {
	return db.view("ping", func(tx *bolt.Tx) error { return nil })
}

func (db *DB) view(op string, fn func(tx *bolt.Tx) error) error {
	start := time.Now()
	defer func() { db.observe(op, time.Since(start)) }()
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return fmt.Errorf("store is closed: %w", core.ErrUnavailable)
	}
	return db.bolt.View(fn)
}

// update runs fn in a write transaction that is committed (fsynced) before
// it returns. A write that finds no other in flight commits at once; writes
// that arrive while one is committing are grouped into one commit (one
// fsync), so fn may run more than once and must depend only on tx.
func (db *DB) update(op string, fn func(tx *bolt.Tx) error) error {
	start := time.Now()
	defer func() { db.observe(op, time.Since(start)) }()
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return fmt.Errorf("store is closed: %w", core.ErrUnavailable)
	}
	defer db.writers.Add(-1)
	if db.writers.Add(1) == 1 {
		return db.bolt.Update(fn)
	}
	return db.bolt.Batch(fn)
}

// nextVersion returns a store-wide increasing version number.
func nextVersion(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bktMeta)
	var v uint64
	if b := meta.Get(keyVersion); len(b) == 8 {
		v = binary.BigEndian.Uint64(b)
	}
	v++
	return v, meta.Put(keyVersion, binary.BigEndian.AppendUint64(nil, v))
}

// projectKey reads a project and its wrapped DEK in tx.
func projectKey(tx *bolt.Tx, id string) (core.Project, []byte, error) {
	p, err := getProject(tx, id)
	if err != nil {
		return p, nil, err
	}
	dek := tx.Bucket(bktDEKs).Get([]byte(id))
	if dek == nil {
		return p, nil, fmt.Errorf("project %s has no data key (it is being deleted): %w", id, core.ErrNotFound)
	}
	return p, bytes.Clone(dek), nil
}

func getProject(tx *bolt.Tx, id string) (core.Project, error) {
	var p core.Project
	b := tx.Bucket(bktProjects).Get([]byte(id))
	if b == nil {
		return p, fmt.Errorf("project %s: %w", id, core.ErrNotFound)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decode project %s: %w", id, err)
	}
	return p, nil
}

func putProject(tx *bolt.Tx, p *core.Project) error {
	v, err := nextVersion(tx)
	if err != nil {
		return err
	}
	p.Version = v
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode project: %w", err)
	}
	return tx.Bucket(bktProjects).Put([]byte(p.ID), b)
}

// CreateProject stores a new project with a fresh DEK. It returns an error
// matching core.ErrExists when the name is taken by a project that is not
// hard-deleted, and assigns p.Subdomain when it is empty or already taken.
func (db *DB) CreateProject(ctx context.Context, p core.Project, newSubdomain func() string) (core.Project, error) {
	wrapped, enc, err := db.sealer.NewDEK(ctx, p.ID, p.Encryption.Provider)
	if err != nil {
		return p, fmt.Errorf("create project %q: %w", p.Name, err)
	}
	p.Encryption = enc
	want := p.Subdomain
	err = db.update("create_project", func(tx *bolt.Tx) error {
		if tx.Bucket(bktNames).Get([]byte(p.Name)) != nil {
			return fmt.Errorf("project %q: %w", p.Name, core.ErrExists)
		}
		if tx.Bucket(bktProjects).Get([]byte(p.ID)) != nil {
			return fmt.Errorf("project id %s: %w", p.ID, core.ErrExists)
		}
		sub := tx.Bucket(bktSubdomain)
		p.Subdomain = want
		for p.Subdomain == "" || sub.Get([]byte(p.Subdomain)) != nil {
			p.Subdomain = newSubdomain()
		}
		if err := sub.Put([]byte(p.Subdomain), []byte(p.ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bktNames).Put([]byte(p.Name), []byte(p.ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bktDEKs).Put([]byte(p.ID), wrapped); err != nil {
			return err
		}
		return putProject(tx, &p)
	})
	if err != nil {
		return p, err
	}
	db.watch.publish(Event{Kind: core.KindProject, Project: p.ID, Name: p.ID, Op: OpPut})
	return p, nil
}

// GetProject returns a project by id, or an error matching core.ErrNotFound.
func (db *DB) GetProject(ctx context.Context, id string) (core.Project, error) {
	var p core.Project
	err := db.view("get_project", func(tx *bolt.Tx) (err error) {
		p, err = getProject(tx, id)
		return err
	})
	return p, err
}

// ListProjects returns every project in the store.
func (db *DB) ListProjects(ctx context.Context) ([]core.Project, error) {
	var out []core.Project
	err := db.view("list_projects", func(tx *bolt.Tx) error {
		return tx.Bucket(bktProjects).ForEach(func(k, v []byte) error {
			var p core.Project
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode project %s: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// UpdateProject applies fn to a project and stores the result. fn may be
// called more than once. When ifVersion is not 0 and differs from the stored
// version the update fails with core.ErrConflict.
func (db *DB) UpdateProject(ctx context.Context, id string, ifVersion uint64, fn func(*core.Project) error) (core.Project, error) {
	var p core.Project
	err := db.update("update_project", func(tx *bolt.Tx) (err error) {
		p, err = getProject(tx, id)
		if err != nil {
			return err
		}
		if ifVersion != 0 && p.Version != ifVersion {
			return fmt.Errorf("project %s: %w", id, core.ErrConflict)
		}
		if err := fn(&p); err != nil {
			return err
		}
		return putProject(tx, &p)
	})
	if err != nil {
		return p, err
	}
	db.watch.publish(Event{Kind: core.KindProject, Project: id, Name: id, Op: OpPut})
	return p, nil
}

// RewrapDEK wraps a project's DEK with its provider's current key version
// when another one wrapped it, and records the new key id on the project,
// in one transaction. Records are not touched: the DEK stays the same. It
// is idempotent, and reports whether it changed anything.
func (db *DB) RewrapDEK(ctx context.Context, projectID string) (bool, error) {
	for attempt := 0; ; attempt++ {
		var old []byte
		err := db.view("read_dek", func(tx *bolt.Tx) error {
			_, d, err := projectKey(tx, projectID)
			old = bytes.Clone(d)
			return err
		})
		if err != nil {
			return false, fmt.Errorf("rewrap dek of project %s: %w", projectID, err)
		}
		wrapped, keyID, changed, err := db.sealer.Rewrap(ctx, projectID, old)
		if err != nil || !changed {
			return false, err
		}
		raced := false
		err = db.update("rewrap_dek", func(tx *bolt.Tx) error {
			p, cur, err := projectKey(tx, projectID)
			if err != nil {
				return err
			}
			if !bytes.Equal(cur, old) {
				raced = true
				return nil
			}
			if err := tx.Bucket(bktDEKs).Put([]byte(projectID), wrapped); err != nil {
				return err
			}
			p.Encryption.KeyID = keyID
			return putProject(tx, &p)
		})
		if err != nil {
			return false, fmt.Errorf("rewrap dek of project %s: %w", projectID, err)
		}
		if !raced {
			db.sealer.Forget(old)
			db.watch.publish(Event{Kind: core.KindProject, Project: projectID, Name: projectID, Op: OpPut})
			return true, nil
		}
		if attempt == 3 {
			return false, fmt.Errorf("rewrap dek of project %s: it keeps changing: %w", projectID, core.ErrConflict)
		}
	}
}

// DestroyDEK deletes a project's wrapped DEK and forgets the unwrapped one:
// the crypto-shred. It is idempotent.
func (db *DB) DestroyDEK(ctx context.Context, projectID string) error {
	var olds [][]byte
	err := db.update("destroy_dek", func(tx *bolt.Tx) error {
		if cur := tx.Bucket(bktDEKs).Get([]byte(projectID)); cur != nil {
			olds = append(olds, bytes.Clone(cur))
		}
		// The DEKs a rotation in progress replaced go too.
		if b := tx.Bucket(bktOldDEKs).Bucket([]byte(projectID)); b != nil {
			b.ForEach(func(_, v []byte) error { olds = append(olds, bytes.Clone(v)); return nil })
			if err := tx.Bucket(bktOldDEKs).DeleteBucket([]byte(projectID)); err != nil {
				return err
			}
		}
		return tx.Bucket(bktDEKs).Delete([]byte(projectID))
	})
	if err != nil {
		return fmt.Errorf("destroy dek of project %s: %w", projectID, err)
	}
	for _, o := range olds {
		db.sealer.Forget(o)
	}
	return nil
}

// PurgeProject removes every record, token, name and finally the project
// record itself. It is idempotent; call DestroyDEK first.
func (db *DB) PurgeProject(ctx context.Context, projectID string) error {
	err := db.update("purge_project", func(tx *bolt.Tx) error {
		if tx.Bucket(bktDEKs).Get([]byte(projectID)) != nil {
			return fmt.Errorf("project %s still has its data key; destroy it first", projectID)
		}
		if err := tx.Bucket(bktData).DeleteBucket([]byte(projectID)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		if err := deleteWhere(tx.Bucket(bktTokens), func(v []byte) bool {
			var t core.Token
			return json.Unmarshal(v, &t) == nil && t.ProjectID == projectID
		}); err != nil {
			return err
		}
		for _, name := range [][]byte{bktNames, bktSubdomain} {
			if err := deleteWhere(tx.Bucket(name), func(v []byte) bool { return string(v) == projectID }); err != nil {
				return err
			}
		}
		// Freed pages still hold old bytes until Compact rewrites the
		// file; the flag makes a crash before then resume the compaction.
		if err := tx.Bucket(bktMeta).Put(keyCompact, []byte{1}); err != nil {
			return err
		}
		return tx.Bucket(bktProjects).Delete([]byte(projectID))
	})
	if err != nil {
		return fmt.Errorf("purge project %s: %w", projectID, err)
	}
	db.watch.publish(Event{Kind: core.KindProject, Project: projectID, Name: projectID, Op: OpDelete})
	return nil
}

func deleteWhere(b *bolt.Bucket, match func(v []byte) bool) error {
	var keys [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		if match(v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Compact rewrites the store into a new file and atomically replaces the old
// one, so that no freed page (old values, destroyed DEKs) remains in the data
// dir. Other operations wait while it runs.
func (db *DB) Compact(ctx context.Context) error {
	start := time.Now()
	defer func() { db.observe("compact", time.Since(start)) }()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return fmt.Errorf("store is closed: %w", core.ErrUnavailable)
	}
	tmp := db.path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("compact: open %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, db.bolt, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact: close %s: %w", tmp, err)
	}
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("compact: close store: %w", err)
	}
	db.bolt = nil
	if err := os.Rename(tmp, db.path); err != nil {
		return fmt.Errorf("compact: replace store: %w", err)
	}
	if d, err := os.Open(filepath.Dir(db.path)); err == nil {
		d.Sync()
		d.Close()
	}
	b, err := openBolt(db.path)
	if err != nil {
		return fmt.Errorf("compact: reopen: %w", err)
	}
	db.bolt = b
	return b.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Delete(keyCompact) })
}

// CompactPending reports whether a purge happened since the last Compact.
func (db *DB) CompactPending(ctx context.Context) (bool, error) {
	var pending bool
	err := db.view("compact_pending", func(tx *bolt.Tx) error {
		pending = tx.Bucket(bktMeta).Get(keyCompact) != nil
		return nil
	})
	return pending, err
}
