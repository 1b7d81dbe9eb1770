package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/seal"
)

var (
	bktAudit      = []byte("audit")
	keyAuditHead  = []byte("audit_head")  // the last event's seq and hash, MACed
	keyAuditStart = []byte("audit_start") // where a pruned chain begins, MACed
)

// auditKeys are derived from the operator's audit key, which the database
// does not hold: one keys the hashes of target names (so the names of a
// hard-deleted project cannot be recovered by guessing), the other MACs the
// chain's two ends (so whoever can write the database cannot rewrite,
// truncate or replace the chain unnoticed).
type auditKeys struct{ target, anchor []byte }

func newAuditKeys(key []byte) auditKeys {
	if len(key) == 0 {
		key = make([]byte, 32) // tests without a key file: valid while the DB is open
		rand.Read(key)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return auditKeys{target: derive("coligo audit target"), anchor: derive("coligo audit anchor")}
}

// targetHash is the keyed hash of a project-scoped name.
func (k auditKeys) targetHash(project, kind, name string) string {
	m := hmac.New(sha256.New, k.target)
	m.Write([]byte(project + "/" + kind + "/" + name))
	return hex.EncodeToString(m.Sum(nil))
}

// anchor is one end of the chain: a sequence number and the hash there.
type anchor struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	MAC  string `json:"mac"`
}

func (k auditKeys) mac(which string, seq uint64, hash string) string {
	m := hmac.New(sha256.New, k.anchor)
	m.Write([]byte(which + "\x00" + strconv.FormatUint(seq, 10) + "\x00" + hash))
	return hex.EncodeToString(m.Sum(nil))
}

func (k auditKeys) putAnchor(tx *bolt.Tx, key []byte, seq uint64, hash string) error {
	v, err := json.Marshal(anchor{Seq: seq, Hash: hash, MAC: k.mac(string(key), seq, hash)})
	if err != nil {
		return err
	}
	return tx.Bucket(bktMeta).Put(key, v)
}

// getAnchor reads an end of the chain; ok is false when there is none, and
// an anchor whose MAC does not hold is an error.
func (k auditKeys) getAnchor(tx *bolt.Tx, key []byte) (a anchor, ok bool, err error) {
	v := tx.Bucket(bktMeta).Get(key)
	if v == nil {
		return a, false, nil
	}
	if err := json.Unmarshal(v, &a); err != nil {
		return a, true, fmt.Errorf("%s is not readable", key)
	}
	if !hmac.Equal([]byte(a.MAC), []byte(k.mac(string(key), a.Seq, a.Hash))) {
		return a, true, fmt.Errorf("%s was not written with the audit key", key)
	}
	return a, true, nil
}

func auditAAD(project, targetHash string) []byte { return []byte(project + "/audit/" + targetHash) }

// AppendAudit appends an event to the hash-chained audit log; Seq, PrevHash
// and Hash are set here, in the same transaction as the chain's MACed head,
// so the chain has no gaps. A project-scoped name (of kind ev.Kind) is
// stored only sealed under the project's DEK and as a keyed hash.
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
		ev.TargetHash = db.audit.targetHash(ev.ProjectID, ev.Kind, name)
		if dek != nil {
			if ev.SealedTarget, err = db.sealer.Seal(ctx, ev.ProjectID, dek, auditAAD(ev.ProjectID, ev.TargetHash), []byte(name)); err != nil {
				return fmt.Errorf("seal audit target: %w", err)
			}
		}
	}
	ev.Time = ev.Time.UTC()
	return db.update("append_audit", func(tx *bolt.Tx) error { return db.appendAudit(tx, ev) })
}

func (db *DB) appendAudit(tx *bolt.Tx, e core.AuditEvent) error {
	b, err := tx.CreateBucketIfNotExists(bktAudit)
	if err != nil {
		return err
	}
	e.PrevHash = ""
	if _, last := b.Cursor().Last(); last != nil {
		var prev core.AuditEvent
		if err := json.Unmarshal(last, &prev); err != nil {
			return fmt.Errorf("decode last audit event: %w", err)
		}
		e.PrevHash = prev.Hash
	} else if start, ok, err := db.audit.getAnchor(tx, keyAuditStart); ok && err == nil {
		e.PrevHash = start.Hash // everything before was pruned
	}
	if e.Seq, err = b.NextSequence(); err != nil {
		return err
	}
	e.Hash = e.ChainHash()
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := b.Put(binary.BigEndian.AppendUint64(nil, e.Seq), v); err != nil {
		return err
	}
	return db.audit.putAnchor(tx, keyAuditHead, e.Seq, e.Hash)
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

// VerifyAudit checks the whole log in the server: the chain from its MACed
// start (the first entry, or where a prune left it) to its MACed head, each
// entry hashing to its hash and naming its predecessor's. An altered,
// removed, reordered or appended-by-hand entry, a cut-off end or a chain
// rewritten without the audit key makes it invalid; the problem names the
// first entry that fails.
func (db *DB) VerifyAudit(ctx context.Context) (core.AuditReport, error) {
	var rep core.AuditReport
	err := db.view("verify_audit", func(tx *bolt.Tx) error {
		first, prev := uint64(1), ""
		start, ok, err := db.audit.getAnchor(tx, keyAuditStart)
		if err != nil {
			rep.Problem = err.Error()
			return nil
		}
		if ok {
			first, prev, rep.PrunedThrough = start.Seq+1, start.Hash, start.Seq
		}
		var evs []core.AuditEvent
		if b := tx.Bucket(bktAudit); b != nil {
			if err := b.ForEach(func(k, v []byte) error {
				var e core.AuditEvent
				if err := json.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("entry %d is not readable", binary.BigEndian.Uint64(k))
				}
				evs = append(evs, e)
				return nil
			}); err != nil {
				rep.Problem = err.Error()
				return nil
			}
		}
		if err := core.VerifyAuditChain(evs, first, prev); err != nil {
			rep.Problem = err.Error()
			return nil
		}
		head, ok, err := db.audit.getAnchor(tx, keyAuditHead)
		switch {
		case err != nil:
			rep.Problem = err.Error()
		case !ok && len(evs) > 0:
			rep.Problem = "the chain has no head anchored with the audit key"
		case ok && len(evs) == 0:
			rep.Problem = fmt.Sprintf("the head names entry %d, but the log is empty: it was cut off", head.Seq)
		case ok && (head.Seq != evs[len(evs)-1].Seq || head.Hash != evs[len(evs)-1].Hash):
			rep.Problem = fmt.Sprintf("the head names entry %d, but the log ends at entry %d: it was cut off or extended without the audit key", head.Seq, evs[len(evs)-1].Seq)
		default:
			rep.Valid, rep.Entries = true, len(evs)
			if len(evs) > 0 {
				rep.First, rep.Last = evs[0].Seq, evs[len(evs)-1].Seq
			}
		}
		return nil
	})
	return rep, err
}

// PruneAudit removes the events older than before and records that it did:
// where the chain now starts is MACed, and the prune is itself an event of
// the chain. It returns how many events it removed (none: no event).
func (db *DB) PruneAudit(ctx context.Context, before time.Time, actor string) (int, error) {
	n := 0
	err := db.update("prune_audit", func(tx *bolt.Tx) error {
		b := tx.Bucket(bktAudit)
		if b == nil {
			return nil
		}
		var keys [][]byte
		var last core.AuditEvent
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e core.AuditEvent
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit event: %w", err)
			}
			if !e.Time.Before(before) {
				break
			}
			keys, last = append(keys, bytes.Clone(k)), e
		}
		if len(keys) == 0 {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if err := db.audit.putAnchor(tx, keyAuditStart, last.Seq, last.Hash); err != nil {
			return err
		}
		n = len(keys)
		return db.appendAudit(tx, core.AuditEvent{Time: time.Now().UTC(), Actor: actor, Action: core.AuditPrune, Kind: "audit",
			Outcome: core.AuditSuccess, Target: "through " + strconv.FormatUint(last.Seq, 10)})
	})
	return n, err
}

// AuditTarget opens an event's sealed target name; core.ErrNotFound when the
// project's DEK is gone (hard-deleted) or there is none.
func (db *DB) AuditTarget(ctx context.Context, ev core.AuditEvent) (string, error) {
	if len(ev.SealedTarget) == 0 {
		return "", core.ErrNotFound
	}
	dek, err := db.auditDEK(ev.ProjectID, ev.SealedTarget)
	if err != nil || dek == nil {
		return "", errors.Join(core.ErrNotFound, err)
	}
	name, err := db.sealer.Open(ctx, ev.ProjectID, dek, auditAAD(ev.ProjectID, ev.TargetHash), ev.SealedTarget)
	if err != nil {
		return "", errors.Join(core.ErrNotFound, err)
	}
	return string(name), nil
}

// auditDEK is the DEK that sealed a target: the project's current one, or
// one a rotation in progress replaced; nil when the project has none.
func (db *DB) auditDEK(project string, sealed []byte) ([]byte, error) {
	var dek []byte
	if err := db.view("read_dek", func(tx *bolt.Tx) error {
		dek = bytes.Clone(tx.Bucket(bktDEKs).Get([]byte(project)))
		return nil
	}); err != nil || dek == nil {
		return nil, err
	}
	if id, _, _, err := seal.Parse(sealed); err == nil && string(id) != seal.DEKID(dek) {
		return db.previousDEK(project, string(id))
	}
	return dek, nil
}

// resealAuditBatch seals again, under the project's current DEK, up to n
// target names of its audit events that an older DEK sealed, so that a
// rotation keeps them readable. The chain does not cover them (their
// additional data binds each to its event's target hash).
func (db *DB) resealAuditBatch(ctx context.Context, projectID string, n int) (int, error) {
	var cur []byte
	type stale struct {
		key []byte
		ev  core.AuditEvent
		raw []byte
	}
	var found []stale
	err := db.view("find_stale_audit", func(tx *bolt.Tx) error {
		var err error
		if _, cur, err = projectKey(tx, projectID); err != nil {
			return err
		}
		want := []byte(seal.DEKID(cur))
		b := tx.Bucket(bktAudit)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(found) == n {
				return nil
			}
			var e core.AuditEvent
			if json.Unmarshal(v, &e) != nil || e.ProjectID != projectID || len(e.SealedTarget) == 0 {
				return nil
			}
			if id, _, _, err := seal.Parse(e.SealedTarget); err == nil && !bytes.Equal(id, want) {
				found = append(found, stale{bytes.Clone(k), e, bytes.Clone(v)})
			}
			return nil
		})
	})
	if err != nil || len(found) == 0 {
		return 0, err
	}
	for i, s := range found {
		name, err := db.AuditTarget(ctx, s.ev)
		if err != nil {
			return 0, fmt.Errorf("open the target of audit event %d: %w", s.ev.Seq, err)
		}
		if found[i].ev.SealedTarget, err = db.sealer.Seal(ctx, projectID, cur, auditAAD(projectID, s.ev.TargetHash), []byte(name)); err != nil {
			return 0, err
		}
	}
	err = db.update("reseal_audit", func(tx *bolt.Tx) error {
		b := tx.Bucket(bktAudit)
		for _, s := range found {
			if !bytes.Equal(b.Get(s.key), s.raw) {
				continue // pruned meanwhile
			}
			v, err := json.Marshal(s.ev)
			if err != nil {
				return err
			}
			if err := b.Put(s.key, v); err != nil {
				return err
			}
		}
		return nil
	})
	return len(found), err
}
