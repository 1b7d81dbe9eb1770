package fake

import (
	"testing"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/enginetest"
)

func TestConformance(t *testing.T) {
	auth := &engine.RegistryAuth{Server: "registry.test", Username: "u", Password: "p"}
	image := "registry.test/coligo-test/busybox:1"
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) engine.Engine {
			e := New()
			e.AddImage(image, auth)
			return e
		},
		Restartable: func(t *testing.T) (engine.Engine, func()) {
			e := New()
			e.AddImage(image, auth)
			return e, e.Restart
		},
		Image: image, Auth: auth,
		Missing:     "registry.test/coligo-test/busybox:no-such-tag",
		Unreachable: "127.0.0.1:1/coligo-test/busybox:1",
		ImageFree:   true,
	})
}
