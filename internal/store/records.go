package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/seal"
)

// kindBucket returns the bucket of one kind of a project, creating it when
// create is set; it returns nil when it does not exist.
func kindBucket(tx *bolt.Tx, ref core.Ref, create bool) (*bolt.Bucket, error) {
	data := tx.Bucket(bktData)
	if !create {
		pb := data.Bucket([]byte(ref.Project))
		if pb == nil {
			return nil, nil
		}
		return pb.Bucket([]byte(ref.Kind)), nil
	}
	pb, err := data.CreateBucketIfNotExists([]byte(ref.Project))
	if err != nil {
		return nil, err
	}
	return pb.CreateBucketIfNotExists([]byte(ref.Kind))
}

// errDEKChanged is a write that sealed its value under a DEK that a
// rotation replaced before the write committed: it is sealed again.
var errDEKChanged = errors.New("the project's data key changed during the write")

// writable checks, inside a write transaction, that the project accepts
// writes and still has the DEK the value was sealed under.
func writable(tx *bolt.Tx, project string, dek []byte) error {
	p, cur, err := projectKey(tx, project)
	if err != nil {
		return err
	}
	if !p.Usable() {
		return fmt.Errorf("project %s is %s: %w", project, p.Status, core.ErrNotActive)
	}
	// A re-wrap changes the stored form but not the key: compare ids.
	if !bytes.Equal(cur, dek) && seal.DEKID(cur) != seal.DEKID(dek) {
		return errDEKChanged
	}
	return nil
}

// sealFor reads the project's DEK and seals value for ref.
func (db *DB) sealFor(ctx context.Context, ref core.Ref, value []byte) (sealed, dek []byte, err error) {
	err = db.view("read_dek", func(tx *bolt.Tx) error {
		p, d, err := projectKey(tx, ref.Project)
		if err != nil {
			return err
		}
		if !p.Usable() {
			return fmt.Errorf("project %s is %s: %w", ref.Project, p.Status, core.ErrNotActive)
		}
		dek = d
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sealed, err = db.sealer.Seal(ctx, ref.Project, dek, ref.AAD(), value)
	return sealed, dek, err
}

// Create stores a new record. It fails with core.ErrExists when the name is
// taken, core.ErrNotFound when the project does not exist and
// core.ErrNotActive when the project does not accept writes. limit, when
// above 0, caps the number of records of the kind (core.ErrQuota).
func (db *DB) Create(ctx context.Context, ref core.Ref, value []byte, limit int) (core.Record, error) {
	return db.create(ctx, ref, value, limit, false)
}

// CreateUnique is Create of a name that no project may hold twice (a
// domain): it fails with core.ErrExists when any project, soft-deleted
// ones included, has a record of that kind and name.
func (db *DB) CreateUnique(ctx context.Context, ref core.Ref, value []byte, limit int) (core.Record, error) {
	return db.create(ctx, ref, value, limit, true)
}

func (db *DB) create(ctx context.Context, ref core.Ref, value []byte, limit int, unique bool) (core.Record, error) {
	var version uint64
	err := retryOnNewDEK(func() error {
		sealed, dek, err := db.sealFor(ctx, ref, value)
		if err != nil {
			return err
		}
		return db.update("create", func(tx *bolt.Tx) error {
			if err := writable(tx, ref.Project, dek); err != nil {
				return err
			}
			b, err := kindBucket(tx, ref, true)
			if err != nil {
				return err
			}
			if b.Get([]byte(ref.Name)) != nil {
				return core.ErrExists
			}
			if unique && heldElsewhere(tx, ref) {
				return fmt.Errorf("another project holds it: %w", core.ErrExists)
			}
			if limit > 0 && b.Stats().KeyN >= limit {
				return fmt.Errorf("a project holds at most %d of them: %w", limit, core.ErrQuota)
			}
			if version, err = nextVersion(tx); err != nil {
				return err
			}
			return b.Put([]byte(ref.Name), frame(version, sealed))
		})
	})
	if err != nil {
		return core.Record{}, fmt.Errorf("create %s %q: %w", ref.Kind, ref.Name, err)
	}
	db.watch.publish(Event{Kind: ref.Kind, Project: ref.Project, Name: ref.Name, Op: OpPut})
	return core.Record{Ref: ref, Version: version, Value: value}, nil
}

// Replace overwrites an existing record. When ifVersion is not 0 and differs
// from the stored version it fails with core.ErrConflict.
func (db *DB) Replace(ctx context.Context, ref core.Ref, value []byte, ifVersion uint64) (core.Record, error) {
	var version uint64
	err := retryOnNewDEK(func() error {
		sealed, dek, err := db.sealFor(ctx, ref, value)
		if err != nil {
			return err
		}
		return db.update("replace", func(tx *bolt.Tx) error {
			if err := writable(tx, ref.Project, dek); err != nil {
				return err
			}
			b, err := kindBucket(tx, ref, false)
			if err != nil {
				return err
			}
			cur := getFramed(b, ref.Name)
			if cur == nil {
				return core.ErrNotFound
			}
			if ifVersion != 0 && binary.BigEndian.Uint64(cur) != ifVersion {
				return core.ErrConflict
			}
			if version, err = nextVersion(tx); err != nil {
				return err
			}
			return b.Put([]byte(ref.Name), frame(version, sealed))
		})
	})
	if err != nil {
		return core.Record{}, fmt.Errorf("replace %s %q: %w", ref.Kind, ref.Name, err)
	}
	db.watch.publish(Event{Kind: ref.Kind, Project: ref.Project, Name: ref.Name, Op: OpPut})
	return core.Record{Ref: ref, Version: version, Value: value}, nil
}

// Delete removes a record; core.ErrNotFound when there is none.
func (db *DB) Delete(ctx context.Context, ref core.Ref) error {
	err := db.update("delete", func(tx *bolt.Tx) error {
		p, err := getProject(tx, ref.Project)
		if err != nil {
			return err
		}
		if !p.Usable() {
			return fmt.Errorf("project %s is %s: %w", ref.Project, p.Status, core.ErrNotActive)
		}
		b, err := kindBucket(tx, ref, false)
		if err != nil {
			return err
		}
		if getFramed(b, ref.Name) == nil {
			return core.ErrNotFound
		}
		return b.Delete([]byte(ref.Name))
	})
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", ref.Kind, ref.Name, err)
	}
	db.watch.publish(Event{Kind: ref.Kind, Project: ref.Project, Name: ref.Name, Op: OpDelete})
	return nil
}

// Get returns a record's plaintext value.
func (db *DB) Get(ctx context.Context, ref core.Ref) (core.Record, error) {
	var dek, framed []byte
	err := db.view("get", func(tx *bolt.Tx) error {
		var err error
		if _, dek, err = projectKey(tx, ref.Project); err != nil {
			return err
		}
		b, err := kindBucket(tx, ref, false)
		if err != nil {
			return err
		}
		if framed = bytes.Clone(getFramed(b, ref.Name)); framed == nil {
			return core.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return core.Record{}, fmt.Errorf("get %s %q: %w", ref.Kind, ref.Name, err)
	}
	return db.open(ctx, ref, dek, framed)
}

// List returns up to limit records of a kind in name order, starting after
// the name after. more reports whether further records follow.
func (db *DB) List(ctx context.Context, project, kind, after string, limit int) (recs []core.Record, more bool, err error) {
	var dek []byte
	var framed [][2][]byte
	err = db.view("list", func(tx *bolt.Tx) error {
		var err error
		if _, dek, err = projectKey(tx, project); err != nil {
			return err
		}
		b, err := kindBucket(tx, core.Ref{Project: project, Kind: kind}, false)
		if err != nil || b == nil {
			return err
		}
		c := b.Cursor()
		k, v := c.First()
		if after != "" {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if limit > 0 && len(framed) == limit {
				more = true
				break
			}
			framed = append(framed, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", kind, err)
	}
	for _, kv := range framed {
		r, err := db.open(ctx, core.Ref{Project: project, Kind: kind, Name: string(kv[0])}, dek, kv[1])
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, r)
	}
	return recs, more, nil
}

func (db *DB) open(ctx context.Context, ref core.Ref, dek, framed []byte) (core.Record, error) {
	if len(framed) < 8 {
		return core.Record{}, fmt.Errorf("open %s %q: record is truncated", ref.Kind, ref.Name)
	}
	if id, _, _, err := seal.Parse(framed[8:]); err == nil && string(id) != seal.DEKID(dek) {
		// Sealed under a DEK that a rotation in progress replaced.
		if dek, err = db.previousDEK(ref.Project, string(id)); err != nil {
			return core.Record{}, fmt.Errorf("open %s %q: %w", ref.Kind, ref.Name, err)
		}
	}
	pt, err := db.sealer.Open(ctx, ref.Project, dek, ref.AAD(), framed[8:])
	if err != nil {
		return core.Record{}, fmt.Errorf("open %s %q: %w", ref.Kind, ref.Name, err)
	}
	return core.Record{Ref: ref, Version: binary.BigEndian.Uint64(framed), Value: pt}, nil
}

func getFramed(b *bolt.Bucket, name string) []byte {
	if b == nil {
		return nil
	}
	return b.Get([]byte(name))
}

func frame(version uint64, sealed []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(sealed)), version), sealed...)
}

// HeldElsewhere reports whether a project other than ref's holds a record
// of ref's kind and name: whether CreateUnique of ref would fail for it.
func (db *DB) HeldElsewhere(ctx context.Context, ref core.Ref) (held bool, err error) {
	err = db.view("held_elsewhere", func(tx *bolt.Tx) error {
		held = heldElsewhere(tx, ref)
		return nil
	})
	return held, err
}

// heldElsewhere reports whether a project other than ref's holds a record
// of ref's kind and name.
func heldElsewhere(tx *bolt.Tx, ref core.Ref) bool {
	c := tx.Bucket(bktData).Cursor()
	for p, v := c.First(); p != nil; p, v = c.Next() {
		if v != nil || string(p) == ref.Project {
			continue
		}
		if kb := tx.Bucket(bktData).Bucket(p).Bucket([]byte(ref.Kind)); kb != nil && kb.Get([]byte(ref.Name)) != nil {
			return true
		}
	}
	return false
}
