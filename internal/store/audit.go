package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/coligo/coligo/internal/core"
)

var bktAudit = []byte("audit")

func auditAAD(project string) []byte { return []byte(project + "/audit") }

// AppendAudit appends an event to the hash-chained audit log; Seq, PrevHash
// and Hash are set here, in the same transaction, so the chain has no gaps.
// A project-scoped name is stored only sealed under the project's DEK and
// as a hash.
func (db *DB) AppendAudit(ctx context.Context, ev core.AuditEvent, name string) error {
	if name != "" && ev.ProjectID != "" {
		var dek []byte
		err := db.view("read_dek", func(tx *bolt.Tx) error {
			dek = bytes.Clone(tx.Bucket(bktDEKs).Get([]byte(ev.ProjectID)))
			return nil
		})
		if err != nil {
			return err
		}
		ev.TargetHash = core.AuditTargetHash(ev.ProjectID, name)
		if dek != nil {
			if ev.SealedTarget, err = db.sealer.Seal(ctx, ev.ProjectID, dek, auditAAD(ev.ProjectID), []byte(name)); err != nil {
				return fmt.Errorf("seal audit target: %w", err)
			}
		}
	}
	ev.Time = ev.Time.UTC()
	return db.update("append_audit", func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bktAudit)
		if err != nil {
			return err
		}
		e := ev
		e.PrevHash = ""
		if _, last := b.Cursor().Last(); last != nil {
			var prev core.AuditEvent
			if err := json.Unmarshal(last, &prev); err != nil {
				return fmt.Errorf("decode last audit event: %w", err)
			}
			e.PrevHash = prev.Hash
		}
		if e.Seq, err = b.NextSequence(); err != nil {
			return err
		}
		e.Hash = e.ChainHash()
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, e.Seq), v)
	})
}

// ListAudit returns up to limit events after sequence number after, of one
// project or (project "") of all; more reports whether further ones follow.
func (db *DB) ListAudit(ctx context.Context, project string, after uint64, limit int) (evs []core.AuditEvent, more bool, err error) {
	err = db.view("list_audit", func(tx *bolt.Tx) error {
		b := tx.Bucket(bktAudit)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil; k, v = c.Next() {
			var e core.AuditEvent
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit event: %w", err)
			}
			if project != "" && e.ProjectID != project {
				continue
			}
			if limit > 0 && len(evs) == limit {
				more = true
				return nil
			}
			evs = append(evs, e)
		}
		return nil
	})
	return evs, more, err
}

// AuditTarget opens an event's sealed target name; core.ErrNotFound when the
// project's DEK is gone (hard-deleted) or there is none.
func (db *DB) AuditTarget(ctx context.Context, ev core.AuditEvent) (string, error) {
	if len(ev.SealedTarget) == 0 {
		return "", core.ErrNotFound
	}
	var dek []byte
	if err := db.view("read_dek", func(tx *bolt.Tx) error {
		dek = bytes.Clone(tx.Bucket(bktDEKs).Get([]byte(ev.ProjectID)))
		return nil
	}); err != nil {
		return "", err
	}
	if dek == nil {
		return "", core.ErrNotFound
	}
	name, err := db.sealer.Open(ctx, ev.ProjectID, dek, auditAAD(ev.ProjectID), ev.SealedTarget)
	if err != nil {
		return "", errors.Join(core.ErrNotFound, err)
	}
	return string(name), nil
}
