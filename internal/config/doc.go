// Package config owns the server's configuration: its fields and defaults,
// the COLIGO_* environment variables that override them, and Validate, which
// refuses a configuration that would be unsafe (plain HTTP off loopback).
package config
