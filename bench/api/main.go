// Command api benchmarks the coligo API through a real server process:
// secret create/get/list throughput and p50/p99 latency, each against GET
// /healthz measured in the same run as the baseline (the cost of HTTP and
// the server loop alone), and the server's resident memory with 100 projects
// of 10 secrets each, against its memory right after start.
//
//	go run ./bench/api -bin bin/coligo
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coligo/coligo/api"
)

func main() {
	bin := flag.String("bin", "bin/coligo", "coligo binary")
	n := flag.Int("n", 2000, "requests per operation")
	conc := flag.Int("c", 8, "concurrent clients")
	flag.Parse()
	if err := run(*bin, *n, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type server struct {
	cmd   *exec.Cmd
	url   string
	token string
}

func start(bin, dir string) (*server, error) {
	cmd := exec.Command(bin, "server", "--data-dir", filepath.Join(dir, "data"), "--api-addr", "127.0.0.1:0",
		"--max-projects", "0", "--max-secrets", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`msg="api listening" url=(\S+)/v2`)
	sc := bufio.NewScanner(stderr)
	s := &server{cmd: cmd}
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			s.url = m[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if s.url == "" {
		cmd.Process.Kill()
		return nil, fmt.Errorf("server did not report its address")
	}
	b, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	s.token = strings.TrimSpace(string(b))
	return s, err
}

func (s *server) rssKiB() int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.Atoi(strings.Fields(l)[1])
			return v
		}
	}
	return 0
}

type result struct {
	name     string
	perSec   float64
	p50, p99 time.Duration
}

// measure runs op n times from conc clients and returns throughput and
// latency percentiles.
func measure(name string, n, conc int, op func(i int) error) (result, error) {
	lat := make([]time.Duration, n)
	var next int
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				t := time.Now()
				if err := op(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s #%d: %w", name, i, err)
					}
					mu.Unlock()
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	total := time.Since(start)
	slices.Sort(lat)
	return result{name: name, perSec: float64(n) / total.Seconds(), p50: lat[n/2], p99: lat[n*99/100]}, firstErr
}

func run(bin string, n, conc int) error {
	dir, err := os.MkdirTemp("", "coligo-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := start(bin, dir)
	if err != nil {
		return err
	}
	defer func() { s.cmd.Process.Signal(os.Interrupt); s.cmd.Wait() }()
	ctx := context.Background()
	c := &api.Client{BaseURL: s.url, Token: s.token, HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}}
	rssStart := s.rssKiB()

	p, err := c.CreateProject(ctx, api.ProjectPrototype{Name: "bench"})
	if err != nil {
		return err
	}
	for p.Status != "active" {
		time.Sleep(10 * time.Millisecond)
		if p, err = c.GetProject(ctx, p.ID); err != nil {
			return err
		}
	}
	value := strings.Repeat("s", 64)
	health := func(int) error {
		resp, err := c.HTTP.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if _, err := measure("warm-up", n, conc, health); err != nil { // open connections, warm the runtime
		return err
	}
	base, err := measure("GET /healthz (baseline)", n, conc, health)
	if err != nil {
		return err
	}
	results := []result{base}
	for _, op := range []struct {
		name string
		f    func(i int) error
	}{
		{"secret create", func(i int) error {
			_, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: fmt.Sprintf("s-%06d", i), Format: "generic", Data: map[string]string{"password": value, "user": "app"}})
			return err
		}},
		{"secret get", func(i int) error { _, err := c.GetSecret(ctx, p.ID, fmt.Sprintf("s-%06d", i)); return err }},
		{"secret list (limit 50)", func(i int) error {
			_, err := c.ListSecrets(ctx, p.ID, api.ListOptions{Limit: 50}, "")
			return err
		}},
	} {
		r, err := measure(op.name, n, conc, op.f)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Printf("API, %d requests per operation, %d clients, one server process on loopback\n\n", n, conc)
	fmt.Println("| operation | req/s | p50 | p99 | p50 ÷ baseline p50 | baseline req/s ÷ req/s |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %s | %.0f | %s | %s | %.2f | %.2f |\n", r.name, r.perSec, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond),
			float64(r.p50)/float64(base.p50), base.perSec/r.perSec)
	}

	// Memory: 100 projects of 10 secrets each.
	for i := range 100 {
		q, err := c.CreateProject(ctx, api.ProjectPrototype{Name: fmt.Sprintf("mem-%03d", i)})
		if err != nil {
			return err
		}
		for q.Status != "active" {
			time.Sleep(5 * time.Millisecond)
			if q, err = c.GetProject(ctx, q.ID); err != nil {
				return err
			}
		}
		for j := range 10 {
			if _, err := c.CreateSecret(ctx, q.ID, api.SecretPrototype{Name: fmt.Sprint("s", j), Format: "generic", Data: map[string]string{"v": value}}); err != nil {
				return err
			}
			if _, err := c.GetSecret(ctx, q.ID, fmt.Sprint("s", j)); err != nil {
				return err
			}
		}
	}
	rss := s.rssKiB()
	fmt.Printf("\nResident memory: %.1f MB at start, %.1f MB with 100 projects × 10 secrets (+ the %d secrets above); ratio %.2f; target ≤ 60 MB\n",
		float64(rssStart)/1024, float64(rss)/1024, n, float64(rss)/float64(rssStart))
	return nil
}
