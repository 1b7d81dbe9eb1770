// Command pause is the sandbox ("pause") process of the test cluster's pods:
// it holds the pod's namespaces and exits on SIGTERM or SIGINT. scripts/kube.sh
// builds it into the image the CRI plugin uses as its sandbox_image, so
// nothing is pulled from outside.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
