package core

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of names and data, from the Code Engine reference (§1.11, §1.6).
const (
	MaxProjectName  = 128
	MaxSubdomainish = 253
	MaxKeyLen       = 253
	MaxDataBytes    = 1 << 20 // all values of one secret or config map together
)

var (
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dataKey          = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	uuidPattern      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// ValidateProjectName checks a project name: 1–128 characters, each either
// non-ASCII or one of [A-Za-z0-9 ._:-].
func ValidateProjectName(name string) error {
	if name == "" {
		return Invalid("name", "must not be empty")
	}
	if !utf8.ValidString(name) {
		return Invalid("name", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > MaxProjectName {
		return Invalid("name", "must be at most %d characters, got %d", MaxProjectName, n)
	}
	for _, r := range name {
		switch {
		case r >= utf8.RuneSelf:
			if r == utf8.RuneError {
				return Invalid("name", "must be valid UTF-8")
			}
			if err := displaySafe(r); err != nil {
				return err
			}
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(" ._:-", r):
		default:
			return Invalid("name", "character %q is not allowed (use letters, digits, space, '.', '_', ':', '-' or non-ASCII)", r)
		}
	}
	return nil
}

// invisible are letters that render as blank space, which a name could use
// to look like another.
var invisible = map[rune]bool{0x115F: true, 0x1160: true, 0x3164: true, 0xFFA0: true, 0x2800: true}

// displaySafe refuses a character of a display name that would make it show
// as something it is not: controls (C0, C1), format characters (bidi
// overrides and isolates, zero-width spaces and joiners, BOM), line and
// paragraph separators, private-use characters and blank letters.
func displaySafe(r rune) error {
	switch {
	case unicode.Is(unicode.Cc, r):
		return Invalid("name", "must not contain control characters (found U+%04X)", r)
	case unicode.Is(unicode.Cf, r):
		return Invalid("name", "must not contain invisible or text-direction characters (found U+%04X)", r)
	case unicode.In(r, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs) || invisible[r] || r == utf8.RuneError:
		return Invalid("name", "must not contain separator, private-use or blank characters (found U+%04X)", r)
	}
	return nil
}

// ValidateResourceName checks the name of a secret or config map: a DNS-1123
// subdomain of at most 253 characters.
func ValidateResourceName(name string) error {
	if name == "" {
		return Invalid("name", "must not be empty")
	}
	if len(name) > MaxSubdomainish {
		return Invalid("name", "must be at most %d characters, got %d", MaxSubdomainish, len(name))
	}
	if !dns1123Subdomain.MatchString(name) {
		return Invalid("name", "%q must consist of lowercase letters, digits, '-' and '.', and begin and end with a letter or digit", clip(name))
	}
	return nil
}

// IsDNSLabel reports whether s is a DNS-1123 label (≤63 characters).
func IsDNSLabel(s string) bool { return len(s) <= 63 && dns1123Label.MatchString(s) }

// IsUUID reports whether s is a lowercase canonical UUID.
func IsUUID(s string) bool { return uuidPattern.MatchString(s) }

// ValidateData checks the keys and total size of secret or config map data.
func ValidateData(data map[string]string) error {
	total := 0
	for _, k := range sortedKeys(data) {
		if len(k) > MaxKeyLen {
			return Invalid("data", "key %q… is longer than %d characters", k[:32], MaxKeyLen)
		}
		if !dataKey.MatchString(k) {
			return Invalid("data", "key %q must consist of letters, digits, '-', '_' and '.'", clip(k))
		}
		total += len(k) + len(data[k])
	}
	if total > MaxDataBytes {
		return Invalid("data", "is %d bytes; the limit for one resource is %d bytes", total, MaxDataBytes)
	}
	return nil
}

// ValidateSecret checks a secret's name, format and data for its format.
func ValidateSecret(s Secret) error {
	if err := ValidateResourceName(s.Name); err != nil {
		return err
	}
	return ValidateSecretData(s.Format, s.Data)
}

// ValidateSecretData checks data against the keys a format requires.
func ValidateSecretData(format string, data map[string]string) error {
	f, ok := secretFormats[format]
	if !ok {
		if format == "" {
			return Invalid("format", "is required; one of %s", strings.Join(SecretFormats(), ", "))
		}
		if format == "service_access" || format == "service_operator" {
			return Invalid("format", "%s secrets hold IBM Cloud service credentials, which a self-hosted installation has none of; keep a service's credentials in a generic secret and bind that", format)
		}
		return Invalid("format", "%q is not supported; one of %s", clip(format), strings.Join(SecretFormats(), ", "))
	}
	if err := ValidateData(data); err != nil {
		return err
	}
	if format == FormatGeneric {
		return nil
	}
	for _, k := range f.required {
		if data[k] == "" {
			return Invalid("data", "format %s requires key %q", format, k)
		}
	}
	for _, k := range sortedKeys(data) {
		if !slices.Contains(f.required, k) && !slices.Contains(f.optional, k) {
			return Invalid("data", "format %s does not take key %q", format, clip(k))
		}
	}
	return nil
}

// SecretFormats lists the formats coligo manages, sorted.
func SecretFormats() []string {
	out := make([]string, 0, len(secretFormats))
	for f := range secretFormats {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// ValidateConfigMap checks a config map's name and data.
func ValidateConfigMap(c ConfigMap) error {
	if err := ValidateResourceName(c.Name); err != nil {
		return err
	}
	return ValidateData(c.Data)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// clip shortens user input quoted in an error message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return fmt.Sprintf("%s…", s[:64])
}
