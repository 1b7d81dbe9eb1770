package core

import (
	"strings"
	"testing"
	"time"
)

func chain(n int) []AuditEvent {
	var evs []AuditEvent
	prev := ""
	for i := 1; i <= n; i++ {
		e := AuditEvent{Seq: uint64(i), Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), Actor: "t", Action: AuditSecretRead, ProjectID: "p",
			Kind: "secret", Outcome: AuditSuccess, StatusCode: 200, TargetHash: "h", SealedTarget: []byte{byte(i)}, PrevHash: prev}
		e.Hash = e.ChainHash()
		prev = e.Hash
		evs = append(evs, e)
	}
	return evs
}

func TestVerifyAuditChain(t *testing.T) {
	tests := []struct {
		name   string
		change func([]AuditEvent) []AuditEvent
		err    string
	}{
		{"intact", func(e []AuditEvent) []AuditEvent { return e }, ""},
		{"altered actor", func(e []AuditEvent) []AuditEvent { e[2].Actor = "someone else"; return e }, "entry 3 was altered"},
		{"altered outcome", func(e []AuditEvent) []AuditEvent { e[1].Outcome = AuditFailure; return e }, "entry 2 was altered"},
		{"altered status", func(e []AuditEvent) []AuditEvent { e[1].StatusCode = 403; return e }, "entry 2 was altered"},
		{"altered target hash", func(e []AuditEvent) []AuditEvent { e[3].TargetHash = "x"; return e }, "entry 4 was altered"},
		// The sealed name is sealed again when the project's key rotates: it
		// is bound to the target hash by its additional data, not hashed.
		{"resealed target", func(e []AuditEvent) []AuditEvent { e[1].SealedTarget = []byte{9}; return e }, ""},
		{"removed entry", func(e []AuditEvent) []AuditEvent { return append(e[:2], e[3:]...) }, "missing"},
		{"removed last and renumbered", func(e []AuditEvent) []AuditEvent {
			e = append(e[:1], e[2:]...)
			e[1].Seq = 2
			e[1].Hash = e[1].ChainHash()
			return e
		}, "does not chain"},
		{"reordered", func(e []AuditEvent) []AuditEvent { e[1], e[2] = e[2], e[1]; return e }, "sequence"},
	}
	for _, tt := range tests {
		err := VerifyAuditChain(tt.change(chain(5)), 1, "")
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.err)
		}
	}
	// After a prune the chain starts later, at an anchor.
	evs := chain(5)
	if err := VerifyAuditChain(evs[2:], 3, evs[1].Hash); err != nil {
		t.Errorf("a pruned chain from its anchor: %v", err)
	}
	if err := VerifyAuditChain(evs[2:], 3, evs[0].Hash); err == nil {
		t.Errorf("a pruned chain from the wrong anchor verified")
	}
}
