// Command coligo is both the coligo server and its CLI.
package main

import (
	"context"
	"os"

	"github.com/coligo/coligo/internal/cli"
	"github.com/coligo/coligo/internal/cli/servercmd"
	"github.com/coligo/coligo/internal/engine/local"
)

func main() {
	args := os.Args[1:]
	if local.IsLogger(args) {
		// Started by the containerd shim to write an instance's log.
		os.Exit(local.RunLogger(args))
	}
	os.Exit(cli.Main(context.Background(), args, servercmd.New()))
}
