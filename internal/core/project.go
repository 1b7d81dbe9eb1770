package core

import "time"

// ProjectStatus is a state of the project state machine:
//
//	          create                      delete
//	(none) ──────────► creating ──► active ──────────► soft_deleted
//	                                  ▲  │                │  │
//	                                  │  │   restore      │  │ delete?hard=true,
//	                                  │  └────────────────┘  │ or retention ends
//	                                  │                       ▼
//	                                  └─ delete?hard=true ─► hard_deleting ──► (gone)
//
// hard_deleting is persisted before any data is destroyed, so a crash in the
// middle resumes at the next start: DEK first, then records, then the project.
type ProjectStatus string

const (
	ProjectCreating     ProjectStatus = "creating"
	ProjectActive       ProjectStatus = "active"
	ProjectSoftDeleted  ProjectStatus = "soft_deleted"
	ProjectHardDeleting ProjectStatus = "hard_deleting"
)

// Project groups a user's workloads, secrets and config maps under one key.
type Project struct {
	ID              string        `json:"id"`
	Name            string        `json:"name"`
	Subdomain       string        `json:"subdomain"`
	ResourceGroupID string        `json:"resource_group_id"`
	Status          ProjectStatus `json:"status"`
	CreatedAt       time.Time     `json:"created_at"`
	DeletedAt       time.Time     `json:"deleted_at,omitzero"`
	RestoredAt      time.Time     `json:"restored_at,omitzero"` // the last restore: what was scheduled before it is not caught up
	HardDeleteAt    time.Time     `json:"hard_delete_at,omitzero"`
	Encryption      Encryption    `json:"encryption"`
	// Version changes on every write; it is the project's entity tag.
	Version uint64 `json:"version"`
}

// Encryption says which root key wraps a project's data key.
type Encryption struct {
	Provider     string    `json:"provider"`
	KeyID        string    `json:"key_id"`
	KeyVersion   int       `json:"key_version"`
	DEKCreatedAt time.Time `json:"dek_created_at"`
}

// Usable reports whether the project's resources may be read and written.
func (p Project) Usable() bool { return p.Status == ProjectActive || p.Status == ProjectCreating }
