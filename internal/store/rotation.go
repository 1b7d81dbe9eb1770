package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/seal"
)

// bktOldDEKs holds, per project, the DEKs a rotation replaced, by DEK id,
// until every record sealed under them is sealed again under the new one.
var bktOldDEKs = []byte("old_deks")

// BeginDEKRotation gives a project a new DEK, keeping the old one for the
// records still sealed under it. A rotation already in progress is left to
// finish (it returns false). Reads and writes go on throughout: new writes
// use the new DEK, reads use whichever sealed the record.
func (db *DB) BeginDEKRotation(ctx context.Context, projectID string) (bool, error) {
	p, err := db.GetProject(ctx, projectID)
	if err != nil {
		return false, err
	}
	wrapped, enc, err := db.sealer.NewDEK(ctx, projectID, p.Encryption.Provider)
	if err != nil {
		return false, err
	}
	began := false
	err = db.update("begin_dek_rotation", func(tx *bolt.Tx) error {
		p, old, err := projectKey(tx, projectID)
		if err != nil {
			return err
		}
		if !p.Usable() {
			return fmt.Errorf("project %s is %s: %w", projectID, p.Status, core.ErrNotActive)
		}
		olds, err := tx.Bucket(bktOldDEKs).CreateBucketIfNotExists([]byte(projectID))
		if err != nil {
			return err
		}
		if olds.Stats().KeyN > 0 {
			return nil // one at a time: finish the rotation in progress first
		}
		if err := olds.Put([]byte(seal.DEKID(old)), old); err != nil {
			return err
		}
		if err := tx.Bucket(bktDEKs).Put([]byte(projectID), wrapped); err != nil {
			return err
		}
		p.Encryption.KeyID, p.Encryption.DEKCreatedAt = enc.KeyID, enc.DEKCreatedAt
		p.Encryption.KeyVersion++
		began = true
		return putProject(tx, &p)
	})
	if err != nil {
		return false, fmt.Errorf("rotate the data key of project %s: %w", projectID, err)
	}
	return began, nil
}

// previousDEK returns a DEK that a rotation replaced, by id.
func (db *DB) previousDEK(projectID, dekID string) ([]byte, error) {
	var out []byte
	err := db.view("read_old_dek", func(tx *bolt.Tx) error {
		if b := tx.Bucket(bktOldDEKs).Bucket([]byte(projectID)); b != nil {
			out = bytes.Clone(b.Get([]byte(dekID)))
		}
		return nil
	})
	if err == nil && out == nil {
		err = fmt.Errorf("no data key %s in project %s: %w", dekID, projectID, seal.ErrCorrupt)
	}
	return out, err
}

// Rotating lists the projects whose DEK rotation has records left to seal.
func (db *DB) Rotating(ctx context.Context) ([]string, error) {
	var out []string
	err := db.view("list_rotations", func(tx *bolt.Tx) error {
		return tx.Bucket(bktOldDEKs).ForEachBucket(func(k []byte) error {
			if tx.Bucket(bktOldDEKs).Bucket(k).Stats().KeyN > 0 {
				out = append(out, string(k))
			}
			return nil
		})
	})
	return out, err
}

// ResealProject seals again, in batches, every record of a project that an
// old DEK sealed, and the names in its audit events, then forgets the old
// DEKs. Each batch is one transaction
// and keeps each record's version (its entity tag): a crash resumes where
// it stopped, and a record written meanwhile is already under the new DEK.
// It returns how many records it sealed again; progress, when not nil, is
// told after each batch.
func (db *DB) ResealProject(ctx context.Context, projectID string, batch int, progress func(done int)) (int, error) {
	if batch <= 0 {
		batch = 100
	}
	total := 0
	for {
		n, err := db.resealBatch(ctx, projectID, batch)
		total += n
		if err != nil {
			return total, fmt.Errorf("seal the records of project %s again: %w", projectID, err)
		}
		m, err := db.resealAuditBatch(ctx, projectID, batch)
		if err != nil {
			return total, fmt.Errorf("seal the audit names of project %s again: %w", projectID, err)
		}
		if n+m == 0 {
			break
		}
		if progress != nil {
			progress(total)
		}
	}
	var olds [][]byte
	err := db.update("end_dek_rotation", func(tx *bolt.Tx) error {
		b := tx.Bucket(bktOldDEKs).Bucket([]byte(projectID))
		if b == nil {
			return nil
		}
		b.ForEach(func(_, v []byte) error { olds = append(olds, bytes.Clone(v)); return nil })
		return tx.Bucket(bktOldDEKs).DeleteBucket([]byte(projectID))
	})
	for _, o := range olds {
		db.sealer.Forget(o)
	}
	return total, err
}

type staleRecord struct {
	ref    core.Ref
	framed []byte
}

// resealBatch seals again up to n records still under an old DEK.
func (db *DB) resealBatch(ctx context.Context, projectID string, n int) (int, error) {
	var cur []byte
	var stale []staleRecord
	err := db.view("find_stale_records", func(tx *bolt.Tx) error {
		var err error
		if _, cur, err = projectKey(tx, projectID); err != nil {
			return err
		}
		want := []byte(seal.DEKID(cur))
		data := tx.Bucket(bktData).Bucket([]byte(projectID))
		if data == nil {
			return nil
		}
		return data.ForEachBucket(func(kind []byte) error {
			return data.Bucket(kind).ForEach(func(name, v []byte) error {
				if len(stale) == n || len(v) < 8 {
					return nil
				}
				if id, _, _, err := seal.Parse(v[8:]); err == nil && !bytes.Equal(id, want) {
					stale = append(stale, staleRecord{core.Ref{Project: projectID, Kind: string(kind), Name: string(name)}, bytes.Clone(v)})
				}
				return nil
			})
		})
	})
	if err != nil || len(stale) == 0 {
		return 0, err
	}
	resealed := make([][]byte, len(stale))
	for i, r := range stale {
		rec, err := db.open(ctx, r.ref, cur, r.framed)
		if err != nil {
			return 0, err
		}
		sealed, err := db.sealer.Seal(ctx, projectID, cur, r.ref.AAD(), rec.Value)
		if err != nil {
			return 0, err
		}
		resealed[i] = frame(rec.Version, sealed)
	}
	done := 0
	err = db.update("reseal_records", func(tx *bolt.Tx) error {
		for i, r := range stale {
			b, err := kindBucket(tx, r.ref, false)
			if err != nil || b == nil {
				continue
			}
			// Only if untouched since it was read; a write in between already
			// sealed it under the new DEK.
			if bytes.Equal(b.Get([]byte(r.ref.Name)), r.framed) {
				if err := b.Put([]byte(r.ref.Name), resealed[i]); err != nil {
					return err
				}
			}
			done++
		}
		return nil
	})
	return done, err
}

// retryOnNewDEK runs a write again when a DEK rotation began between sealing
// the value and writing it.
func retryOnNewDEK(write func() error) error {
	for attempt := 0; ; attempt++ {
		err := write()
		if !errors.Is(err, errDEKChanged) || attempt == 3 {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// KeysInUse returns, per provider, the root key versions that wrap a stored
// DEK (current ones and those a DEK rotation in progress still needs).
func (db *DB) KeysInUse(ctx context.Context) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	add := func(v []byte) {
		var rec seal.WrappedDEK
		if json.Unmarshal(v, &rec) == nil {
			if out[rec.Provider] == nil {
				out[rec.Provider] = map[string]bool{}
			}
			out[rec.Provider][rec.KeyID] = true
		}
	}
	err := db.view("keys_in_use", func(tx *bolt.Tx) error {
		tx.Bucket(bktDEKs).ForEach(func(_, v []byte) error { add(v); return nil })
		olds := tx.Bucket(bktOldDEKs)
		return olds.ForEachBucket(func(k []byte) error {
			return olds.Bucket(k).ForEach(func(_, v []byte) error { add(v); return nil })
		})
	})
	return out, err
}
