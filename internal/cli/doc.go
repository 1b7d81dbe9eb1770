// Package cli owns the coligo command line: the cobra commands, one file per
// noun, shaped like `ibmcloud ce`. Every command talks to a server only
// through package api; `coligo server` is package servercmd's, added by
// cmd/coligo.
package cli
