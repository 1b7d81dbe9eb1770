// Package cli owns the coligo command line: the cobra commands, one file per
// noun, shaped like `ibmcloud ce`. Apart from `coligo server`, which starts
// the server, every command talks to a server only through package api.
package cli
