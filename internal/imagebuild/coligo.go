package imagebuild

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ColigoUID is the user coligo's image runs as (as distroless's nonroot).
const ColigoUID = "65532"

// Coligo builds coligo's own image, reproducibly: the same binaries give
// the same digest (no timestamps, files in order). It holds /coligo (a
// static build), /coligo-init beside it, the CA certificates the server
// trusts for registries and KMS endpoints, and a passwd entry for its user;
// it runs `coligo server` as user 65532.
func Coligo(coligo, initBin, caCerts []byte) (v1.Image, error) {
	files := []File{
		{Path: "coligo", Data: coligo, Mode: 0o755},
		{Path: "coligo-init", Data: initBin, Mode: 0o755},
		{Path: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:" + ColigoUID + ":" + ColigoUID + ":nonroot:/home/nonroot:/sbin/nologin\n"), Mode: 0o644},
		{Path: "etc/group", Data: []byte("root:x:0:\nnonroot:x:" + ColigoUID + ":\n"), Mode: 0o644},
	}
	if len(caCerts) > 0 {
		files = append(files, File{Path: "etc/ssl/certs/ca-certificates.crt", Data: caCerts, Mode: 0o644})
	}
	return Build(files, func(c *v1.Config) {
		c.Entrypoint, c.Cmd = []string{"/coligo"}, []string{"server"}
		c.User = ColigoUID + ":" + ColigoUID
		c.Labels = map[string]string{"org.opencontainers.image.title": "coligo"}
	})
}
