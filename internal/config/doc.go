// Package config owns the server's configuration: its fields and defaults
// (Code Engine's where it has one, such as the project quotas), and
// Validate, which names the flag of every value it refuses and refuses a
// configuration that would be unsafe (plain HTTP off loopback). The
// COLIGO_<FLAG> environment variables that override the defaults are read
// by the CLI (internal/cli), which owns the flags.
package config
