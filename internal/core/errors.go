package core

import (
	"errors"
	"fmt"
)

// Error classes. Every layer wraps them once with context; the API edge maps
// them to status codes in one place.
var (
	ErrNotFound        = errors.New("not found")
	ErrExists          = errors.New("already exists")
	ErrInvalid         = errors.New("invalid")
	ErrConflict        = errors.New("conflict")        // entity tag mismatch
	ErrUnavailable     = errors.New("unavailable")     // a dependency (key, store) cannot serve
	ErrKeyUnavailable  = errors.New("key unavailable") // a project's key cannot be used now; also matches ErrUnavailable
	ErrQuota           = errors.New("quota exceeded")  // a per-project or server limit
	ErrNotActive       = errors.New("project not active")
	ErrForbidden       = errors.New("forbidden")
	ErrUnauthenticated = errors.New("unauthenticated")
)

// FieldError is a validation failure of one field. It matches ErrInvalid.
type FieldError struct {
	Field   string // JSON name of the field, e.g. "name" or "data.key"
	Message string
}

func (e *FieldError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Message) }

// Is reports that a FieldError is of class ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns a FieldError for field.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// KeyError is a project key that its provider cannot use now (revoked,
// disabled, destroyed, the plugin down). It matches ErrKeyUnavailable and
// ErrUnavailable; its message names the provider and key, never key material.
type KeyError struct {
	Provider string
	KeyID    string
	Err      error
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("the project's key %s of provider %s cannot be used: %v", e.KeyID, e.Provider, e.Err)
}

// Is reports that a KeyError is of class ErrKeyUnavailable and ErrUnavailable.
func (e *KeyError) Is(target error) bool {
	return target == ErrKeyUnavailable || target == ErrUnavailable
}

// Unwrap returns the provider's error.
func (e *KeyError) Unwrap() error { return e.Err }
