package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
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
	AuditPrune          = "audit.prune"    // events older than the retention were removed (target: "through <seq>")
	AuditBackup         = "store.backup"   // an admin took a copy of the store
	AuditConsoleLogin   = "console.login"  // a token was exchanged for a web console session
	AuditConsoleLogout  = "console.logout" // a web console session ended
)

// Outcomes of an audited call.
const (
	AuditSuccess = "success"
	AuditFailure = "failure"
)

// AuditEvent is one entry of the append-only, hash-chained audit log. Each
// entry's Hash covers its fields and the previous entry's hash, so removing
// or altering an entry breaks the chain; the store anchors the chain's ends
// with a key the database does not hold. A project-scoped target name is
// kept only sealed under the project's DEK (SealedTarget, sealed again when
// that key rotates, so it is outside the hash and bound to TargetHash
// instead) and as a keyed hash: once the project is hard-deleted, the log
// holds no name of it that can be read or guessed.
type AuditEvent struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Actor        string    `json:"actor"` // token id, or "system" / "coligo"
	Action       string    `json:"action"`
	Kind         string    `json:"kind,omitempty"`        // kind of the resource acted on
	Outcome      string    `json:"outcome,omitempty"`     // success or failure
	StatusCode   int       `json:"status_code,omitempty"` // of an API call
	ProjectID    string    `json:"project_id,omitempty"`
	Target       string    `json:"target,omitempty"`        // in clear: only ids that are not project data
	TargetHash   string    `json:"target_hash,omitempty"`   // keyed hash of "<project>/<kind>/<name>"
	SealedTarget []byte    `json:"sealed_target,omitempty"` // the name, sealed under the project's DEK
	PrevHash     string    `json:"prev_hash"`
	Hash         string    `json:"hash"`
}

// AuditReport is the outcome of a verification of the whole audit log.
type AuditReport struct {
	Valid         bool
	Entries       int
	First, Last   uint64 // sequence numbers of the first and last entry kept
	PrunedThrough uint64 // entries up to this one were pruned
	Problem       string // why it does not verify, naming the first entry that fails
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
	for _, s := range []string{e.Actor, e.Action, e.Kind, e.Outcome, strconv.Itoa(e.StatusCode), e.ProjectID, e.Target, e.TargetHash} {
		field([]byte(s))
	}
	field([]byte(e.PrevHash))
	s := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(s[:])
}

// VerifyAuditChain checks that events chain: each has the next sequence
// number after first-1, names its predecessor's hash (the first names prev)
// and hashes to its Hash. It returns an error naming the first entry that
// does not.
func VerifyAuditChain(events []AuditEvent, first uint64, prev string) error {
	for i, e := range events {
		if e.Seq != first+uint64(i) {
			return fmt.Errorf("entry %d has sequence number %d: an entry is missing or was reordered", first+uint64(i), e.Seq)
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
