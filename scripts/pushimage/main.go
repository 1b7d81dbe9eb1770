// Command pushimage builds a one-layer image from a Go main package (static,
// no Docker) and pushes it to a registry with basic auth over plain HTTP, or
// writes it as an image tarball for `ctr images import`.
//
//	go run ./scripts/pushimage DIR REF             (credentials from REGISTRY_USER / REGISTRY_PASSWORD)
//	go run ./scripts/pushimage -tar FILE DIR REF
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/coligo/coligo/internal/imagebuild"
)

func main() {
	tarFile := flag.String("tar", "", "write an image tarball to this file instead of pushing")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: pushimage [-tar FILE] DIR REF")
		os.Exit(2)
	}
	dir, ref := flag.Arg(0), flag.Arg(1)
	prog, err := imagebuild.GoProgram(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	img, err := imagebuild.Image([]imagebuild.File{{Path: "app", Data: prog, Mode: 0o755}}, []string{"/app"}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *tarFile != "" {
		tag, err := name.NewTag(ref)
		if err == nil {
			err = tarball.WriteToFile(*tarFile, tag, img)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	digest, err := imagebuild.Push(context.Background(), ref, img, os.Getenv("REGISTRY_USER"), os.Getenv("REGISTRY_PASSWORD"), true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("pushed %s (%s)\n", ref, digest)
}
