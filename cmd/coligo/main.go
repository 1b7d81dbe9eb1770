// Command coligo is both the coligo server and its CLI.
package main

import (
	"context"
	"os"

	"github.com/coligo/coligo/internal/cli"
)

func main() { os.Exit(cli.Main(context.Background(), os.Args[1:])) }
