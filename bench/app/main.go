// Command app benchmarks apps through a real server process, each figure
// beside a baseline measured in the same run:
//
//	(a) cold start: from a request to an app scaled to zero until its first
//	    response byte, p50 and p99, against creating, starting and reading
//	    the first byte of the same image with the containerd client directly
//	    (host network, nothing else), for each OCI runtime (runc, crun),
//	    and on the kubernetes engine where scripts/kube.sh started a cluster;
//	(b) router overhead: requests per second and p50/p99 latency through the
//	    router against straight to the instance's address, same load;
//	(c) scale-up: from a step to 50 concurrent clients until the app has the
//	    instances its target asks for, against starting that many containers
//	    at once directly.
//
//	go run ./bench/app -bin bin/coligo   (needs the parts of scripts/parts.sh)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/bench/internal/benchkit"
)

func main() {
	bin := flag.String("bin", "bin/coligo", "coligo binary")
	trials := flag.Int("trials", 20, "cold starts per path")
	requests := flag.Int("n", 20000, "requests per router measurement")
	conc := flag.Int("c", 8, "concurrent clients of the router measurement")
	runtimes := flag.String("runtimes", "runc,crun", "OCI runtimes to compare")
	before := flag.String("before", "", "another coligo binary (an earlier build) whose cold start is measured in the same run, for a change's cost")
	flag.Parse()
	if err := run(*bin, *before, *trials, *requests, *conc, strings.Split(*runtimes, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type parts struct{ containerd, cniDir, reg, user, pass, image string }

func run(bin, before string, trials, requests, conc int, runtimes []string) error {
	ctx := context.Background()
	pt := parts{containerd: benchkit.Env("COLIGO_TEST_CONTAINERD"), cniDir: os.Getenv("COLIGO_TEST_CNI_BIN_DIR"),
		reg: benchkit.Env("COLIGO_TEST_REGISTRY"), user: benchkit.Env("COLIGO_TEST_REGISTRY_USER"), pass: benchkit.Env("COLIGO_TEST_REGISTRY_PASSWORD")}
	var err error
	if pt.image, err = benchkit.PushHello(ctx, pt.reg, pt.user, pt.pass); err != nil {
		return err
	}
	bare, err := newBare(ctx, pt)
	if err != nil {
		return err
	}
	defer bare.close()
	kubeArgs := benchkit.KubeEngineArgs()

	fmt.Printf("(a) cold start, request → first response byte, %d trials each, 2 cores\n\n", trials)
	fmt.Println("| path | runtime | p50 | p99 | p50 ÷ bare p50 (same runtime) |")
	fmt.Println("|---|---|---|---|---|")
	for _, rt := range runtimes {
		base, err := bare.coldStarts(ctx, rt, trials)
		if err != nil {
			// crun 1.8 refuses hosts with cgroups in hybrid mode, for one.
			fmt.Printf("| containerd client directly | %s | fails here: %s | | |\n", rt, strings.ReplaceAll(err.Error(), "|", "/"))
			continue
		}
		col, err := coligoColdStarts(ctx, bin, pt, []string{"--containerd-address", pt.containerd, "--cni-bin-dir", pt.cniDir,
			"--cni-subnet", "10.216.0.0/16", "--oci-runtime", rt, "--userns=false"}, trials)
		if err != nil {
			return fmt.Errorf("coligo %s: %w", rt, err)
		}
		fmt.Printf("| containerd client directly: create + start + first byte (baseline) | %s | %s | %s | 1.00 |\n", rt, ms(p(base, 50)), ms(p(base, 99)))
		fmt.Printf("| coligo --userns=false: router holds the request, instance created, started, probed, request proxied | %s | %s | %s | %.2f |\n",
			rt, ms(p(col, 50)), ms(p(col, 99)), float64(p(col, 50))/float64(p(base, 50)))
		userns, err := coligoColdStarts(ctx, bin, pt, []string{"--containerd-address", pt.containerd, "--cni-bin-dir", pt.cniDir,
			"--cni-subnet", "10.216.0.0/16", "--oci-runtime", rt, "--userns"}, trials)
		if err != nil {
			return fmt.Errorf("coligo %s --userns: %w", rt, err)
		}
		fmt.Printf("| coligo --userns (user namespaces) | %s | %s | %s | %.2f (÷ without: p50 %.2f, p99 %.2f) |\n", rt, ms(p(userns, 50)), ms(p(userns, 99)),
			float64(p(userns, 50))/float64(p(base, 50)), float64(p(userns, 50))/float64(p(col, 50)), float64(p(userns, 99))/float64(p(col, 99)))
		if before != "" {
			old, err := coligoColdStarts(ctx, before, pt, []string{"--containerd-address", pt.containerd, "--cni-bin-dir", pt.cniDir,
				"--cni-subnet", "10.216.0.0/16", "--oci-runtime", rt, "--userns=false"}, trials)
			if err != nil {
				return fmt.Errorf("coligo before (%s): %w", before, err)
			}
			fmt.Printf("| coligo before the change (-before %s) | %s | %s | %s | %.2f (this build ÷ before: p50 %.2f, p99 %.2f) |\n",
				before, rt, ms(p(old, 50)), ms(p(old, 99)), float64(p(old, 50))/float64(p(base, 50)),
				float64(p(col, 50))/float64(p(old, 50)), float64(p(col, 99))/float64(p(old, 99)))
		}
		if rt != "runc" || len(kubeArgs) == 0 {
			continue
		}
		kube, err := coligoColdStarts(ctx, bin, pt, kubeArgs, max(5, trials/2))
		if err != nil {
			return fmt.Errorf("coligo on kubernetes: %w", err)
		}
		fmt.Printf("| coligo, kubernetes engine (1 node): a pod created, scheduled, started, probed, request proxied | runc (CRI) | %s | %s | %.2f (%.2f × coligo local) |\n",
			ms(p(kube, 50)), ms(p(kube, 99)), float64(p(kube, 50))/float64(p(base, 50)), float64(p(kube, 50))/float64(p(col, 50)))
	}

	s, err := benchkit.Start(bin, "--containerd-address", pt.containerd, "--cni-bin-dir", pt.cniDir, "--cni-subnet", "10.216.0.0/16",
		"--insecure-registry", pt.reg, "--autoscale-stable-window", "6s", "--autoscale-panic-window", "1s", "--oci-runtime", runtimes[0])
	if err != nil {
		return err
	}
	defer s.Stop()
	p, cleanup, err := s.Project(ctx, "bench", pt.reg, pt.user, pt.pass)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := routerOverhead(ctx, s, p, pt, requests, conc); err != nil {
		return err
	}
	return scaleUp(ctx, s, p, pt, bare, runtimes[0])
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func p(ds []time.Duration, pct int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return benchkit.Percentile(s, pct)
}

// bare runs the image with the containerd client alone.
type bare struct {
	client *containerd.Client
	image  containerd.Image
	ctx    context.Context
}

const bareNS = "coligo-bench-bare"

func newBare(ctx context.Context, pt parts) (*bare, error) {
	client, err := containerd.New(pt.containerd)
	if err != nil {
		return nil, err
	}
	ctx = namespaces.WithNamespace(ctx, bareNS)
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) { return pt.user, pt.pass, nil }))),
		docker.WithPlainHTTP(func(h string) (bool, error) { return h == pt.reg, nil }))})
	image, err := client.Pull(ctx, pt.image, containerd.WithPullUnpack, containerd.WithResolver(resolver))
	if err != nil {
		client.Close()
		return nil, err
	}
	return &bare{client: client, image: image, ctx: ctx}, nil
}

func (b *bare) close() {
	b.client.ImageService().Delete(b.ctx, b.image.Name())
	b.client.NamespaceService().Delete(b.ctx, bareNS)
	b.client.Close()
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start creates and starts one container of the image on the host network
// and waits for its first response byte; stop removes it.
func (b *bare) start(rt, id string) (time.Duration, func(), error) {
	port := freePort()
	runtime := containerd.WithRuntime("io.containerd.runc.v2", nil)
	if rt != "runc" {
		runtime = containerd.WithRuntime("io.containerd.runc.v2", &runcoptions.Options{BinaryName: rt})
	}
	t0 := time.Now()
	c, err := b.client.NewContainer(b.ctx, id, containerd.WithImage(b.image), containerd.WithNewSnapshot(id, b.image), runtime,
		containerd.WithNewSpec(oci.WithImageConfig(b.image), oci.WithHostNamespace(specs.NetworkNamespace),
			oci.WithEnv([]string{fmt.Sprintf("PORT=%d", port), "K_REVISION=bare"})))
	if err != nil {
		return 0, nil, err
	}
	stop := func() {
		if t, err := c.Task(b.ctx, nil); err == nil {
			t.Kill(b.ctx, syscall.SIGKILL)
			t.Delete(b.ctx, containerd.WithProcessKill)
		}
		c.Delete(b.ctx, containerd.WithSnapshotCleanup)
	}
	task, err := c.NewTask(b.ctx, cio.NullIO)
	if err != nil {
		stop()
		return 0, nil, err
	}
	if err := task.Start(b.ctx); err != nil {
		stop()
		return 0, nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for {
		if _, err := benchkit.FirstByte(url, ""); err == nil {
			return time.Since(t0), stop, nil
		}
		if time.Since(t0) > 30*time.Second {
			stop()
			return 0, nil, fmt.Errorf("no answer from %s", id)
		}
		time.Sleep(time.Millisecond)
	}
}

func (b *bare) coldStarts(ctx context.Context, rt string, trials int) ([]time.Duration, error) {
	var out []time.Duration
	for i := range trials + 1 {
		d, stop, err := b.start(rt, fmt.Sprintf("bare-%s-%d", rt, i))
		if err != nil {
			return nil, err
		}
		stop()
		if i > 0 { // the first one warms caches
			out = append(out, d)
		}
	}
	return out, nil
}

func createApp(ctx context.Context, c *api.Client, project string, a api.AppPrototype) (*api.App, error) {
	a.ImageSecret, a.ScaleCPULimit, a.ScaleMemoryLimit = "reg", "0.5", "1G"
	created, err := c.CreateApp(ctx, project, a)
	if err != nil {
		return nil, err
	}
	for created.Status != "ready" {
		if created.Status == "failed" {
			return nil, fmt.Errorf("app %s failed: %+v", a.Name, created.StatusDetails)
		}
		time.Sleep(20 * time.Millisecond)
		if created, err = c.GetApp(ctx, project, a.Name); err != nil {
			return nil, err
		}
	}
	return created, nil
}

func intp(i int) *int { return &i }

// coligoColdStarts measures requests to an app that the autoscaler scaled
// to zero, on a server with a 1 s stable window, each a second after the
// app reached zero.
func coligoColdStarts(ctx context.Context, bin string, pt parts, engineArgs []string, trials int) ([]time.Duration, error) {
	s, err := benchkit.Start(bin, append([]string{"--insecure-registry", pt.reg, "--autoscale-stable-window", "1s", "--autoscale-panic-window", "200ms"}, engineArgs...)...)
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	c := s.Client()
	p, cleanup, err := s.Project(ctx, "cold", pt.reg, pt.user, pt.pass)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	a, err := createApp(ctx, c, p.ID, api.AppPrototype{Name: "cold", AppSpec: api.AppSpec{ImageReference: pt.image}})
	if err != nil {
		return nil, err
	}
	host := strings.TrimPrefix(a.Endpoint, "http://")
	var out []time.Duration
	for i := range trials + 1 {
		if err := benchkit.WaitAppInstances(ctx, c, p.ID, "cold", func(_, all int) bool { return all == 0 }); err != nil {
			return nil, err
		}
		// Idle, as an app at zero is between requests: coligo prepares an
		// instance meanwhile (about 100 ms).
		time.Sleep(time.Second)
		d, err := benchkit.FirstByte("http://"+s.Router+"/", host)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

// instanceAddr finds the address of an app's one instance from containerd.
func routerOverhead(ctx context.Context, s *benchkit.Server, p *api.Project, pt parts, n, conc int) error {
	c := s.Client()
	a, err := createApp(ctx, c, p.ID, api.AppPrototype{Name: "steady", AppSpec: api.AppSpec{ImageReference: pt.image,
		ScaleMinInstances: intp(1), ScaleMaxInstances: intp(1), ScaleConcurrency: intp(1000)}})
	if err != nil {
		return err
	}
	addr, err := benchkit.InstanceAddr(ctx, pt.containerd, p.ID, "steady")
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	get := func(url, host string) func(int) error {
		return func(int) error {
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	direct := get("http://"+addr+"/", "")
	routed := get("http://"+s.Router+"/", strings.TrimPrefix(a.Endpoint, "http://"))
	fmt.Printf("\n(b) router overhead: GET / of the sample app, %d requests per round from keep-alive clients, better of two rounds after a warm-up\n\n", n)
	fmt.Println("| clients | path | req/s | p50 | p99 | req/s ÷ baseline | added p50 | added p99 |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, clients := range []int{1, conc} {
		var best [2]benchkit.Result
		for round := range 3 {
			for i, op := range []func(int) error{direct, routed} {
				name := []string{"straight to the instance (baseline)", "through the router"}[i]
				r, err := benchkit.Measure(name, n, clients, op)
				if err != nil {
					return err
				}
				if round > 0 && r.PerSec > best[i].PerSec {
					best[i] = r
				}
			}
		}
		base, rt := best[0], best[1]
		fmt.Printf("| %d | %s | %.0f | %s | %s | 1.00 | | |\n", clients, base.Name, base.PerSec, us(base.P50), us(base.P99))
		fmt.Printf("| %d | %s | %.0f | %s | %s | %.2f | %s | %s |\n", clients, rt.Name, rt.PerSec, us(rt.P50), us(rt.P99), rt.PerSec/base.PerSec, us(rt.P50-base.P50), us(rt.P99-base.P99))
	}
	return nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Nanoseconds())/1e6) }

func scaleUp(ctx context.Context, s *benchkit.Server, p *api.Project, pt parts, b *bare, rt string) error {
	const clients, target, sleepMS = 50, 10, 200
	want := clients / target
	c := s.Client()
	a, err := createApp(ctx, c, p.ID, api.AppPrototype{Name: "burst", AppSpec: api.AppSpec{ImageReference: pt.image,
		ScaleConcurrency: intp(target), ScaleConcurrencyTarget: intp(target), ScaleMaxInstances: intp(10)}})
	if err != nil {
		return err
	}
	if err := benchkit.WaitAppInstances(ctx, c, p.ID, "burst", func(ready, all int) bool { return ready == 1 && all == 1 }); err != nil {
		return err
	}
	host := strings.TrimPrefix(a.Endpoint, "http://")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t0 := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/?sleep=%d", s.Router, sleepMS), nil)
				req.Host = host
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	err = benchkit.WaitAppInstances(ctx, c, p.ID, "burst", func(ready, _ int) bool { return ready >= want })
	took := time.Since(t0)
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	// Baseline: start the missing instances at once with containerd alone.
	var bwg sync.WaitGroup
	var mu sync.Mutex
	var stops []func()
	var berr error
	b0 := time.Now()
	for i := range want - 1 {
		bwg.Go(func() {
			_, stopOne, err := b.start(rt, fmt.Sprintf("bare-scale-%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				berr = err
				return
			}
			stops = append(stops, stopOne)
		})
	}
	bwg.Wait()
	base := time.Since(b0)
	for _, st := range stops {
		st()
	}
	if berr != nil {
		return berr
	}
	fmt.Printf("\n(c) scale-up: step from 0 to %d clients (each request %d ms) on 1 ready instance, target %d per instance\n\n", clients, sleepMS, target)
	fmt.Println("| path | time to the instances needed | ÷ baseline |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| containerd client directly: %d containers started at once to first byte (baseline) | %s | 1.00 |\n", want-1, ms(base))
	fmt.Printf("| coligo: autoscaler (panic window 1 s) decides, %d instances start and pass their probe | %s | %.2f |\n", want-1, ms(took), took.Seconds()/base.Seconds())
	return nil
}
