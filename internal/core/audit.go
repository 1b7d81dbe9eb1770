package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Audit actions.
const (
	AuditTokenCreate    = "token.create"
	AuditTokenRevoke    = "token.revoke"
	AuditSecretRead     = "secret.read"
	AuditProjectCreate  = "project.create"
	AuditProjectDelete  = "project.delete"
	AuditProjectRestore = "project.restore"
	AuditProjectShred   = "project.hard_delete"
	AuditKeyRotate      = "key.rotate"           // a root key got a new version (target: provider/key id)
	AuditKeyRotateDEK   = "key.rotate_dek"       // a project got a new data key; its records are sealed again
	AuditKeyRetire      = "key.retire"           // an old root key version no DEK needs was deleted
	AuditKeyRewrap      = "key.rewrap"           // a project's data key was wrapped by a new root key version
	AuditKeyUnavailable = "key_provider.failure" // a key provider stopped answering (target: provider)
	AuditKeyRecovered   = "key_provider.recovered"
)

// AuditEvent is one entry of the append-only, hash-chained audit log. Each
// entry's Hash covers its fields and the previous entry's hash, so removing
// or altering an entry breaks the chain. A project-scoped target name is
// kept only sealed under the project's DEK (SealedTarget) and as a hash: once
// the project is hard-deleted, the log holds no name of it in clear.
type AuditEvent struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Actor        string    `json:"actor"` // token id
	Action       string    `json:"action"`
	ProjectID    string    `json:"project_id,omitempty"`
	Target       string    `json:"target,omitempty"`        // in clear: only ids that are not project data
	TargetHash   string    `json:"target_hash,omitempty"`   // SHA-256 of "<project>/<name>"
	SealedTarget []byte    `json:"sealed_target,omitempty"` // the name, sealed under the project's DEK
	PrevHash     string    `json:"prev_hash"`
	Hash         string    `json:"hash"`
}

// TargetHash hashes a project-scoped name for the audit log.
func AuditTargetHash(project, name string) string {
	s := sha256.Sum256([]byte(project + "/" + name))
	return hex.EncodeToString(s[:])
}

// ChainHash computes an event's hash from its fields and PrevHash.
func (e AuditEvent) ChainHash() string {
	var b bytes.Buffer
	field := func(s []byte) {
		b.Write(binary.BigEndian.AppendUint64(nil, uint64(len(s))))
		b.Write(s)
	}
	field(binary.BigEndian.AppendUint64(nil, e.Seq))
	field([]byte(e.Time.UTC().Format(time.RFC3339Nano)))
	for _, s := range []string{e.Actor, e.Action, e.ProjectID, e.Target, e.TargetHash} {
		field([]byte(s))
	}
	field(e.SealedTarget)
	field([]byte(e.PrevHash))
	s := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(s[:])
}

// VerifyAuditChain checks that events, in order from the first, chain: each
// has the next sequence number, names its predecessor's hash and hashes to
// its Hash. It returns an error naming the first entry that does not.
func VerifyAuditChain(events []AuditEvent) error {
	prev := ""
	for i, e := range events {
		if e.Seq != uint64(i+1) {
			return fmt.Errorf("entry %d has sequence number %d: an entry is missing or was reordered", i+1, e.Seq)
		}
		if e.PrevHash != prev {
			return fmt.Errorf("entry %d does not chain to entry %d", e.Seq, e.Seq-1)
		}
		if e.ChainHash() != e.Hash {
			return fmt.Errorf("entry %d was altered: its hash does not match its contents", e.Seq)
		}
		prev = e.Hash
	}
	return nil
}
