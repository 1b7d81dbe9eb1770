// Command jobrun benchmarks a 100-index job run of a program that exits at
// once, end to end through a coligo server (submit → completed), against the
// baseline of the same 100 containers created, started, awaited and deleted
// directly with the containerd client in the same run; and, where
// scripts/kube.sh started a cluster, the same run on the kubernetes engine.
//
//	go run ./bench/jobrun -bin bin/coligo   (needs the parts of scripts/parts.sh)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/bench/internal/benchkit"
)

func main() {
	bin := flag.String("bin", "bin/coligo", "coligo binary")
	n := flag.Int("n", 100, "indices")
	parallel := flag.Int("parallel", 8, "containers started at once by the baseline (coligo's default)")
	before := flag.String("before", "", "another coligo binary (an earlier build) measured in the same run, for a change's cost")
	flag.Parse()
	if err := run(*bin, *before, *n, *parallel); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin, before string, n, parallel int) error {
	ctx := context.Background()
	addr, reg := benchkit.Env("COLIGO_TEST_CONTAINERD"), benchkit.Env("COLIGO_TEST_REGISTRY")
	user, pass := benchkit.Env("COLIGO_TEST_REGISTRY_USER"), benchkit.Env("COLIGO_TEST_REGISTRY_PASSWORD")
	ref, err := benchkit.PushHello(ctx, reg, user, pass)
	if err != nil {
		return err
	}

	base, err := baseline(ctx, addr, ref, reg, user, pass, n, parallel)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	col, err := throughColigo(ctx, bin, []string{"--containerd-address", addr, "--cni-bin-dir", os.Getenv("COLIGO_TEST_CNI_BIN_DIR"),
		"--cni-subnet", "10.216.0.0/16", "--userns=false"}, ref, reg, user, pass, n)
	if err != nil {
		return fmt.Errorf("coligo: %w", err)
	}
	userns, err := throughColigo(ctx, bin, []string{"--containerd-address", addr, "--cni-bin-dir", os.Getenv("COLIGO_TEST_CNI_BIN_DIR"),
		"--cni-subnet", "10.216.0.0/16", "--userns"}, ref, reg, user, pass, n)
	if err != nil {
		return fmt.Errorf("coligo --userns: %w", err)
	}
	var old time.Duration
	if before != "" {
		if old, err = throughColigo(ctx, before, []string{"--containerd-address", addr, "--cni-bin-dir", os.Getenv("COLIGO_TEST_CNI_BIN_DIR"),
			"--cni-subnet", "10.216.0.0/16", "--userns=false"}, ref, reg, user, pass, n); err != nil {
			return fmt.Errorf("coligo before: %w", err)
		}
	}
	var kube time.Duration
	if args := benchkit.KubeEngineArgs(); args != nil {
		if kube, err = throughColigo(ctx, bin, args, ref, reg, user, pass, n); err != nil {
			return fmt.Errorf("coligo on kubernetes: %w", err)
		}
	}
	fmt.Printf("%d-index job run of a program that exits at once, 2 cores\n\n", n)
	fmt.Println("| path | wall time | instances/s | ÷ baseline |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| containerd client directly (baseline, %d at a time, no network) | %s | %.1f | 1.00 |\n", parallel, base.Round(time.Millisecond), float64(n)/base.Seconds())
	fmt.Printf("| coligo job run --userns=false (submit → completed, with CNI network, logs, status) | %s | %.1f | %.2f |\n", col.Round(time.Millisecond), float64(n)/col.Seconds(), col.Seconds()/base.Seconds())
	fmt.Printf("| coligo job run --userns (a new project: its first run copies the image to the project's id range) | %s | %.1f | %.2f (÷ without: %.2f) |\n",
		userns.Round(time.Millisecond), float64(n)/userns.Seconds(), userns.Seconds()/base.Seconds(), userns.Seconds()/col.Seconds())
	if old > 0 {
		fmt.Printf("| coligo before the change (-before %s, --userns=false) | %s | %.1f | %.2f (this build ÷ before: %.2f) |\n", before, old.Round(time.Millisecond),
			float64(n)/old.Seconds(), old.Seconds()/base.Seconds(), col.Seconds()/old.Seconds())
	}
	if kube > 0 {
		fmt.Printf("| coligo job run, kubernetes engine (one Indexed Job, 1 node, %d pods at a time) | %s | %.1f | %.2f (%.2f × coligo local) |\n",
			n, kube.Round(time.Millisecond), float64(n)/kube.Seconds(), kube.Seconds()/base.Seconds(), kube.Seconds()/col.Seconds())
	}
	return nil
}

// baseline pulls the image once, then creates, starts, awaits and deletes n
// containers with the containerd client, parallel at a time.
func baseline(ctx context.Context, addr, ref, reg, user, pass string, n, parallel int) (time.Duration, error) {
	client, err := containerd.New(addr)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, "coligo-bench-baseline")
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) { return user, pass, nil }))),
		docker.WithPlainHTTP(func(h string) (bool, error) { return h == reg, nil }))})
	image, err := client.Pull(ctx, ref, containerd.WithPullUnpack, containerd.WithResolver(resolver))
	if err != nil {
		return 0, err
	}
	defer func() {
		client.ImageService().Delete(ctx, ref)
		client.NamespaceService().Delete(ctx, "coligo-bench-baseline")
	}()
	start := time.Now()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := once(ctx, client, image, fmt.Sprintf("base-%d", i)); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}

func once(ctx context.Context, client *containerd.Client, image containerd.Image, id string) error {
	c, err := client.NewContainer(ctx, id, containerd.WithImage(image), containerd.WithNewSnapshot(id, image),
		containerd.WithNewSpec(oci.WithImageConfig(image), oci.WithEnv([]string{"JOB_INDEX=0"})))
	if err != nil {
		return err
	}
	defer c.Delete(ctx, containerd.WithSnapshotCleanup)
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		return err
	}
	defer task.Delete(ctx)
	exited, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	if err := task.Start(ctx); err != nil {
		return err
	}
	<-exited
	return nil
}

func throughColigo(ctx context.Context, bin string, engineArgs []string, ref, reg, user, pass string, n int) (time.Duration, error) {
	s, err := benchkit.Start(bin, append([]string{"--insecure-registry", reg, "--max-instances", "1000"}, engineArgs...)...)
	if err != nil {
		return 0, err
	}
	defer s.Stop()
	c := s.Client()
	p, cleanup, err := s.Project(ctx, "bench", reg, user, pass)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	// Warm the image cache with a one-index run, as the baseline pulled first.
	spec := api.RunSpec{ImageReference: ref, ImageSecret: "reg", ScaleCPULimit: "0.125", ScaleMemoryLimit: "0.25G"}
	if err := submitAndWait(ctx, c, p.ID, "warm", spec); err != nil {
		return 0, err
	}
	spec.ScaleArraySpec = fmt.Sprintf("0-%d", n-1)
	start := time.Now()
	if err := submitAndWait(ctx, c, p.ID, "bench", spec); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func submitAndWait(ctx context.Context, c *api.Client, project, name string, spec api.RunSpec) error {
	if _, err := c.CreateJobRun(ctx, project, api.JobRunPrototype{Name: name, RunSpec: spec}); err != nil {
		return err
	}
	for {
		r, err := c.GetJobRun(ctx, project, name)
		if err != nil {
			return err
		}
		if r.Status == "completed" {
			return nil
		}
		if r.Status == "failed" {
			return fmt.Errorf("run %s failed: %+v", name, r.StatusDetails)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
