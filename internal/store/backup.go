package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole store to w while the store
// serves: one read transaction's view, so every write acknowledged before it
// began is in it and none after. size is called with the copy's length
// before the first byte. Records stay sealed: a backup is no use without
// the root key (or KMS keys) that wrap its data keys.
func (db *DB) Backup(ctx context.Context, w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := db.view("backup", func(tx *bolt.Tx) error {
		size(tx.Size())
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// Restore makes the backup at src the store file dst, which must not exist:
// it checks that src is a store, copies it beside dst, syncs it and renames
// it into place.
func Restore(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("restore: a store exists at %s; move it away first, a restore never replaces one", dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	b, err := bolt.Open(src, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("restore: %s is not a coligo store: %w", src, err)
	}
	err = b.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		if meta == nil || tx.Bucket(bktProjects) == nil || tx.Bucket(bktDEKs) == nil {
			return errors.New("it lacks the store's buckets")
		}
		if v := meta.Get(keySchema); string(v) != "1" {
			return fmt.Errorf("schema version %q is not supported", v)
		}
		return nil
	})
	b.Close()
	if err != nil {
		return fmt.Errorf("restore: %s is not a coligo store: %w", src, err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	tmp := dst + ".restore"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
