// Command coligo-init is PID 1 of every instance on the local engine; see
// internal/initproc. Build it static: CGO_ENABLED=0.
package main

import (
	"os"

	"github.com/coligo/coligo/internal/initproc"
)

func main() { os.Exit(initproc.Main(os.Args[1:], os.Stderr)) }
