// Command coligoimage builds coligo's own container image from the static
// binaries `make build` made (bin/coligo, bin/coligo-init), without Docker
// and reproducibly, and writes it as an image tarball (`ctr images import`,
// `docker load`) or pushes it (credentials from REGISTRY_USER and
// REGISTRY_PASSWORD).
//
//	go run ./scripts/coligoimage -o bin/coligo-image.tar REF
//	go run ./scripts/coligoimage -push [-plain-http] REF
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
	out := flag.String("o", "", "write an image tarball to this file")
	push := flag.Bool("push", false, "push to REF")
	plain := flag.Bool("plain-http", false, "the registry speaks plain HTTP")
	bin := flag.String("bin", "bin", "directory of coligo and coligo-init")
	flag.Parse()
	if flag.NArg() != 1 || (*out == "") == !*push {
		fmt.Fprintln(os.Stderr, "usage: coligoimage (-o FILE | -push [-plain-http]) [-bin DIR] REF")
		os.Exit(2)
	}
	if err := run(*bin, flag.Arg(0), *out, *plain); err != nil {
		fmt.Fprintln(os.Stderr, "coligoimage:", err)
		os.Exit(1)
	}
}

func run(bin, ref, out string, plain bool) error {
	coligo, err := os.ReadFile(bin + "/coligo")
	if err != nil {
		return err
	}
	initBin, err := os.ReadFile(bin + "/coligo-init")
	if err != nil {
		return err
	}
	certs, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt") // none: no public CA is trusted
	img, err := imagebuild.Coligo(coligo, initBin, certs)
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if out != "" {
		tag, err := name.NewTag(ref)
		if err != nil {
			return err
		}
		if err := tarball.WriteToFile(out, tag, img); err != nil {
			return err
		}
		fmt.Printf("wrote %s as %s (%s)\n", out, ref, d)
		return nil
	}
	if _, err := imagebuild.Push(context.Background(), ref, img, os.Getenv("REGISTRY_USER"), os.Getenv("REGISTRY_PASSWORD"), plain); err != nil {
		return err
	}
	fmt.Printf("pushed %s@%s\n", ref, d)
	return nil
}
