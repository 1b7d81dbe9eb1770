package benchkit

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// InstanceAddr is the address (ip:8080) of the one instance of an app on
// the local engine, read from containerd.
func InstanceAddr(ctx context.Context, containerdAddr, project, app string) (string, error) {
	client, err := containerd.New(containerdAddr)
	if err != nil {
		return "", err
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, "coligo-"+project)
	cs, err := client.Containers(ctx, fmt.Sprintf("labels.%q==%q", "coligo.app", app))
	if err != nil || len(cs) != 1 {
		return "", fmt.Errorf("want one instance of %s: %d, %v", app, len(cs), err)
	}
	labels, err := cs[0].Labels(ctx)
	if err != nil {
		return "", err
	}
	return labels["coligo.ip"] + ":8080", nil
}
