// Command api benchmarks the coligo API through a real server process:
// secret create/get/list throughput and p50/p99 latency, each against GET
// /healthz measured in the same run as the baseline (the cost of HTTP and
// the server loop alone), and the server's resident memory with 100 projects
// of 10 secrets each, against its memory right after start.
//
//	go run ./bench/api -bin bin/coligo
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/bench/internal/benchkit"
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

func run(bin string, n, conc int) error {
	s, err := benchkit.Start(bin, "--max-projects", "0", "--max-secrets", "0")
	if err != nil {
		return err
	}
	defer s.Stop()
	ctx := context.Background()
	c := s.Client()
	c.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	rssStart := s.RSSKiB()

	p, err := benchkit.ActiveProject(ctx, c, "bench")
	if err != nil {
		return err
	}
	value := strings.Repeat("s", 64)
	health := func(int) error {
		resp, err := c.HTTP.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if _, err := benchkit.Measure("warm-up", n, conc, health); err != nil { // open connections, warm the runtime
		return err
	}
	base, err := benchkit.Measure("GET /healthz (baseline)", n, conc, health)
	if err != nil {
		return err
	}
	results := []benchkit.Result{base}
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
		r, err := benchkit.Measure(op.name, n, conc, op.f)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Printf("API, %d requests per operation, %d clients, one server process on loopback\n\n", n, conc)
	fmt.Println("| operation | req/s | p50 | p99 | p50 ÷ baseline p50 | baseline req/s ÷ req/s |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %s | %.0f | %s | %s | %.2f | %.2f |\n", r.Name, r.PerSec, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond),
			float64(r.P50)/float64(base.P50), base.PerSec/r.PerSec)
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
	rss := s.RSSKiB()
	fmt.Printf("\nResident memory: %.1f MB at start, %.1f MB with 100 projects × 10 secrets (+ the %d secrets above); ratio %.2f; target ≤ 60 MB\n",
		float64(rssStart)/1024, float64(rss)/1024, n, float64(rss)/float64(rssStart))
	return nil
}
