// Package servercmd is `coligo server`, kept apart from package cli so
// that the CLI's own commands (and their tests and fuzz targets) do not
// build the whole server.
package servercmd
