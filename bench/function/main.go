// Command function benchmarks functions through a real server process,
// each figure beside a baseline measured in the same run:
//
//	(a) cold start: from a request to a function with no instance until
//	    its first response byte (the code given to a pre-warmed runtime),
//	    p50 and p99, against an app's cold start of the same code wrapped
//	    in a minimal Node.js HTTP server (its image: the same runtime's);
//	(b) warm invocation: p50 and p99 of one client's requests through the
//	    router, against the same requests straight to the instance.
//
//	go run ./bench/function -bin bin/coligo   (needs the parts of scripts/parts.sh)
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/bench/internal/benchkit"
	"github.com/coligo/coligo/internal/function/runtime"
	"github.com/coligo/coligo/internal/imagebuild"
)

// code is the function both paths run.
const code = "function main(args) { return { body: 'hello ' + (args.name || 'world') + '\\n' }; }\nmodule.exports.main = main;\n"

// server wraps code in a minimal HTTP server: the app of the baseline.
const server = `const http = require('http');
const f = require('./function.js');
http.createServer(async (req, res) => {
  const r = await f.main({});
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(r.body);
}).listen(Number(process.env.PORT || 8080));
`

func main() {
	bin := flag.String("bin", "bin/coligo", "coligo binary")
	trials := flag.Int("trials", 20, "cold starts per path")
	warm := flag.Int("n", 2000, "warm requests per path")
	flag.Parse()
	if err := run(*bin, *trials, *warm); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin string, trials, warm int) error {
	ctx := context.Background()
	cd, reg, user, pass := benchkit.Env("COLIGO_TEST_CONTAINERD"), benchkit.Env("COLIGO_TEST_REGISTRY"), benchkit.Env("COLIGO_TEST_REGISTRY_USER"), benchkit.Env("COLIGO_TEST_REGISTRY_PASSWORD")
	rts := runtime.Catalogue(runtime.Discover(ctx, runtime.Candidates), time.Now())
	i := slices.IndexFunc(rts, func(r runtime.Runtime) bool { return r.Family == runtime.NodeJS })
	if i < 0 {
		return fmt.Errorf("no Node.js interpreter on this host")
	}
	node := rts[i]
	appImage, err := pushApp(ctx, node, reg, user, pass)
	if err != nil {
		return err
	}
	s, err := benchkit.Start(bin, "--containerd-address", cd, "--cni-bin-dir", benchkit.Env("COLIGO_TEST_CNI_BIN_DIR"), "--cni-subnet", "10.216.0.0/16",
		"--insecure-registry", reg, "--autoscale-stable-window", "1s", "--autoscale-panic-window", "200ms", "--function-pool", "1")
	if err != nil {
		return err
	}
	defer s.Stop()
	c := s.Client()
	p, cleanup, err := s.Project(ctx, "fnbench", reg, user, pass)
	if err != nil {
		return err
	}
	defer cleanup()
	zero := 0
	a, err := c.CreateApp(ctx, p.ID, api.AppPrototype{Name: "wrapped", AppSpec: api.AppSpec{ImageReference: appImage, ImageSecret: "reg",
		ScaleCPULimit: "0.25", ScaleMemoryLimit: "1G", ScaleDownDelay: &zero}})
	if err != nil {
		return err
	}
	f, err := c.CreateFunction(ctx, p.ID, api.FunctionPrototype{Name: "fn", FunctionSpec: api.FunctionSpec{Runtime: node.ID,
		CodeReference: "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte(code)),
		ScaleCPULimit: "0.25", ScaleMemoryLimit: "1G", ScaleDownDelay: &zero}})
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		ga, err1 := c.GetApp(ctx, p.ID, a.Name)
		gf, err2 := c.GetFunction(ctx, p.ID, f.Name)
		if err1 == nil && err2 == nil && ga.Status == "ready" && gf.Status == "ready" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("app and function not ready within 3 minutes: %v %v", err1, err2)
		}
	}
	appHost, fnHost := strings.TrimPrefix(a.Endpoint, "http://"), strings.TrimPrefix(f.Endpoint, "http://")
	url := "http://" + s.Router + "/"
	var appCold, fnCold []time.Duration
	for i := range trials + 1 {
		if err := benchkit.WaitAppInstances(ctx, c, p.ID, a.Name, func(_, all int) bool { return all == 0 }); err != nil {
			return err
		}
		if err := waitFunctionAtZero(ctx, cd, p.ID); err != nil {
			return err
		}
		time.Sleep(time.Second) // idle, as a workload at zero is between requests
		da, err := benchkit.FirstByte(url, appHost)
		if err != nil {
			return fmt.Errorf("app cold start: %w", err)
		}
		df, err := benchkit.FirstByte(url, fnHost)
		if err != nil {
			return fmt.Errorf("function cold start: %w", err)
		}
		if i > 0 { // the first warms caches
			appCold, fnCold = append(appCold, da), append(fnCold, df)
		}
	}
	slices.Sort(appCold)
	slices.Sort(fnCold)
	fmt.Printf("\n(a) cold start, %d trials each, Node.js %s\n\n| path | p50 | p99 | p50 ÷ app |\n|---|---|---|---|\n", trials, node.Version)
	fmt.Printf("| app: the same code in a minimal HTTP server (baseline) | %s | %s | 1.00 |\n", ms(benchkit.Percentile(appCold, 50)), ms(benchkit.Percentile(appCold, 99)))
	fmt.Printf("| function: code given to a pre-warmed runtime | %s | %s | %.2f |\n", ms(benchkit.Percentile(fnCold, 50)), ms(benchkit.Percentile(fnCold, 99)),
		float64(benchkit.Percentile(fnCold, 50))/float64(benchkit.Percentile(appCold, 50)))

	// (b) warm: keep the function's instance busy enough to stay, find it,
	// and call it both ways.
	keep := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	call := func(target, host string) func(int) error {
		return func(int) error {
			req, _ := http.NewRequest("GET", target, nil)
			if host != "" {
				req.Host = host
			}
			resp, err := keep.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	// The two paths alternate: the router must see the load, or the
	// autoscaler takes the instance away while it is called straight.
	if err := call(url, fnHost)(0); err != nil { // the instance is there
		return err
	}
	addr, err := claimedInstance(ctx, cd, p.ID)
	if err != nil {
		return err
	}
	viaRouter, straight := call(url, fnHost), call("http://"+addr+"/", "")
	var routed, direct []time.Duration
	for i := range warm {
		for _, path := range []struct {
			op  func(int) error
			out *[]time.Duration
		}{{viaRouter, &routed}, {straight, &direct}} {
			t0 := time.Now()
			if err := path.op(i); err != nil {
				return fmt.Errorf("warm request %d: %w", i, err)
			}
			*path.out = append(*path.out, time.Since(t0))
		}
	}
	slices.Sort(routed)
	slices.Sort(direct)
	rp50, dp50 := benchkit.Percentile(routed, 50), benchkit.Percentile(direct, 50)
	fmt.Printf("\n(b) warm invocation, %d requests each, one client, the paths alternating\n\n| path | p50 | p99 | added p50 |\n|---|---|---|---|\n", warm)
	fmt.Printf("| straight to the instance (baseline) | %s | %s | |\n", us(dp50), us(benchkit.Percentile(direct, 99)))
	fmt.Printf("| through the router | %s | %s | %s |\n", us(rp50), us(benchkit.Percentile(routed, 99)), us(rp50-dp50))
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func us(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Nanoseconds())/1e6) }

// pushApp builds the baseline app's image, the runtime's with the code and
// its server added, and pushes it.
func pushApp(ctx context.Context, r runtime.Runtime, reg, user, pass string) (string, error) {
	base, err := runtime.Image(r)
	if err != nil {
		return "", err
	}
	layer, err := imagebuild.Build([]imagebuild.File{{Path: "app/function.js", Data: []byte(code), Mode: 0o644}, {Path: "app/server.js", Data: []byte(server), Mode: 0o644}}, func(*v1.Config) {})
	if err != nil {
		return "", err
	}
	layers, err := layer.Layers()
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.Config.Entrypoint = []string{r.Interpreter, "/app/server.js"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", err
	}
	ref := reg + "/bench/node-app:1"
	_, err = imagebuild.Push(ctx, ref, img, user, pass, true)
	return ref, err
}

// functionInstances are the addresses of the project's runtime instances.
func functionInstances(ctx context.Context, cdAddr, project string) ([]string, error) {
	client, err := containerd.New(cdAddr)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, "coligo-"+project)
	cs, err := client.Containers(ctx, `labels."coligo.function.runtime"`)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err == nil && labels["coligo.ip"] != "" {
			out = append(out, labels["coligo.ip"]+":8080")
		}
	}
	return out, nil
}

// claimedInstance is the runtime instance that runs the function: a
// pre-warmed one answers 503 until it has code.
func claimedInstance(ctx context.Context, cdAddr, project string) (string, error) {
	addrs, err := functionInstances(ctx, cdAddr, project)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if resp, err := http.Get("http://" + a + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return a, nil
			}
		}
	}
	return "", fmt.Errorf("no runtime instance of the function answers (of %v)", addrs)
}

// waitFunctionAtZero waits until the function has no instance with code:
// the project's runtime instances are its pre-warmed ones only.
func waitFunctionAtZero(ctx context.Context, cdAddr, project string) error {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := claimedInstance(ctx, cdAddr, project); err != nil {
			return nil
		}
	}
	return fmt.Errorf("the function kept an instance for a minute")
}
