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
			TargetHash: AuditTargetHash("p", "s"), SealedTarget: []byte{byte(i)}, PrevHash: prev}
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
		{"altered sealed target", func(e []AuditEvent) []AuditEvent { e[1].SealedTarget = []byte{9}; return e }, "entry 2 was altered"},
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
		err := VerifyAuditChain(tt.change(chain(5)))
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.err)
		}
	}
}
