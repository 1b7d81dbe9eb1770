// Command pushimage builds a one-layer image from a Go main package (static,
// no Docker) and pushes it to a registry with basic auth over plain HTTP.
//
//	go run ./scripts/pushimage DIR REF   (credentials from REGISTRY_USER / REGISTRY_PASSWORD)
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/coligo/coligo/internal/imagebuild"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: pushimage DIR REF")
		os.Exit(2)
	}
	prog, err := imagebuild.GoProgram(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	img, err := imagebuild.Image([]imagebuild.File{{Path: "app", Data: prog, Mode: 0o755}}, []string{"/app"}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	digest, err := imagebuild.Push(context.Background(), os.Args[2], img, os.Getenv("REGISTRY_USER"), os.Getenv("REGISTRY_PASSWORD"), true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("pushed %s (%s)\n", os.Args[2], digest)
}
