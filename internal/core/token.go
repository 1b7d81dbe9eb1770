package core

import (
	"time"
	"unicode/utf8"
)

// Role is what a token may do. Admin tokens are not bound to a project.
type Role string

const (
	RoleReader  Role = "reader"  // get and list; never secret values
	RoleWriter  Role = "writer"  // + create, update, delete resources
	RoleManager Role = "manager" // + delete and restore the project, manage its tokens
	RoleAdmin   Role = "admin"   // everything, every project
)

// rank orders roles so that a stronger role includes a weaker one.
var rank = map[Role]int{RoleReader: 1, RoleWriter: 2, RoleManager: 3, RoleAdmin: 4}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return rank[r] > 0 }

// AtLeast reports whether r includes min.
func (r Role) AtLeast(min Role) bool { return rank[r] >= rank[min] }

// Token is an API access token. Only the SHA-256 of its value is stored.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	ProjectID string    `json:"project_id,omitempty"` // empty for admin tokens
	Role      Role      `json:"role"`
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	// An exchange (POST /identity/token, as IAM's) makes an access token
	// and a refresh token of Parent's identity: Kind says which, ExpiresAt
	// ends them, and they go with Parent. A token of its own has neither.
	Parent    string     `json:"parent,omitempty"`
	Kind      string     `json:"kind,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// The kinds of the tokens an exchange makes.
const (
	TokenAccess  = "access"
	TokenRefresh = "refresh"
)

// ValidateTokenName checks a token's display name: 1–128 bytes of valid
// UTF-8 that shows as what it is (no controls, no bidi or zero-width
// characters).
func ValidateTokenName(name string) error {
	if name == "" || len(name) > 128 {
		return Invalid("name", "must be 1 to 128 characters")
	}
	if !utf8.ValidString(name) {
		return Invalid("name", "must be valid UTF-8")
	}
	for _, r := range name {
		if err := displaySafe(r); err != nil {
			return err
		}
	}
	return nil
}
