// Command router compares coligo's router with the proxies users would
// otherwise put in front of an app, in one run, in front of the same
// instance (the sample app of examples/hello with 2 vCPU, on coligo's CNI
// bridge): straight to the instance (the baseline), coligo's router, nginx
// (2 workers, upstream keepalive) and haproxy (2 threads, http-reuse
// always), both from Debian, each loaded by wrk (Debian) at 1, 8 and 64
// connections. It reports req/s, p50 and p99 as wrk measures them, and
// each proxy's CPU seconds per 10,000 requests (user + system time of its
// processes, from /proc).
//
//	go run ./bench/router -bin bin/coligo   (needs the parts of scripts/parts.sh, nginx, haproxy and wrk)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coligo/coligo/bench/internal/benchkit"
)

func main() {
	bin := flag.String("bin", "bin/coligo", "coligo binary")
	dur := flag.Duration("d", 6*time.Second, "how long wrk loads each path at each connection count")
	conns := flag.String("c", "1,8,64", "connection counts")
	floor := flag.Bool("floor", false, "also measure two minimal Go proxies, a goroutine per connection and an epoll loop per core (floor.go)")
	serve := flag.String("serve-floor", "", "serve as a floor proxy of this kind (goroutine or epoll): how -floor runs them")
	listen := flag.String("floor-listen", "", "with -serve-floor: where to listen")
	up := flag.String("floor-up", "", "with -serve-floor: the instance")
	flag.Parse()
	if *serve != "" {
		if err := serveFloor(*serve, *listen, *up); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, *dur, *conns, *floor); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// target is a path under load: where wrk connects, with which Host, and
// the processes whose CPU time it costs (none for the baseline).
type target struct {
	name string
	url  string
	host string
	pids func() []int
}

func run(bin string, dur time.Duration, conns string, floor bool) error {
	for _, tool := range []string{"wrk", "nginx", "haproxy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install wrk nginx haproxy; scripts/bench.sh installs them)", tool)
		}
	}
	ctx := context.Background()
	st, err := benchkit.StartSteady(ctx, bin, "routerbench")
	if err != nil {
		return err
	}
	defer st.Stop()
	s, p, a := st.Server, st.Project, st.App
	addr, err := benchkit.InstanceAddr(ctx, benchkit.Env("COLIGO_TEST_CONTAINERD"), p.ID, "steady")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "coligo-routerbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nginx, err := startNginx(dir, addr)
	if err != nil {
		return err
	}
	defer stop(nginx)
	haproxy, err := startHAProxy(dir, addr)
	if err != nil {
		return err
	}
	defer stop(haproxy)

	server := s.Cmd.Process.Pid
	targets := []target{
		{name: "straight to the instance (baseline)", url: "http://" + addr + "/"},
		{name: "coligo router", url: "http://" + s.Router + "/", host: strings.TrimPrefix(a.Endpoint, "http://"), pids: func() []int { return []int{server} }},
		{name: "nginx 1.22 (2 workers, upstream keepalive 64)", url: "http://" + nginx.addr + "/", pids: nginx.pids},
		{name: "haproxy 2.6 (2 threads, http-reuse always)", url: "http://" + haproxy.addr + "/", pids: haproxy.pids},
	}
	if floor {
		for _, f := range []struct{ kind, name string }{
			{"goroutine", "floor: minimal Go proxy, a goroutine per connection"},
			{"epoll", "floor: minimal Go proxy, an epoll loop per core"},
		} {
			fp, err := startFloor(f.kind, addr)
			if err != nil {
				return err
			}
			defer stop(fp)
			targets = append(targets, target{name: f.name, url: "http://" + fp.addr + "/", pids: fp.pids})
		}
	}
	fmt.Printf("GET / of the sample app (2 vCPU) through each path, wrk for %s per row, 2 cores shared by load, proxy and app\n\n", dur)
	fmt.Println("| connections | path | req/s | p50 | p99 | req/s ÷ direct | added p50 | CPU s per 10k requests |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, field := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return fmt.Errorf("-c %q: want connection counts", conns)
		}
		var base result
		for i, t := range targets {
			// A short warm-up opens the keep-alive connections.
			if _, err := load(t, n, time.Second); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			r, err := load(t, n, dur)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if i == 0 {
				base = r
				fmt.Printf("| %d | %s | %.0f | %s | %s | 1.00 | | |\n", n, t.name, r.perSec, ms(r.p50), ms(r.p99))
				continue
			}
			fmt.Printf("| %d | %s | %.0f | %s | %s | %.2f | %s | %.2f |\n", n, t.name, r.perSec, ms(r.p50), ms(r.p99),
				r.perSec/base.perSec, ms(r.p50-base.p50), r.cpu.Seconds()/float64(r.requests)*10000)
		}
	}
	return nil
}

type result struct {
	perSec   float64
	p50, p99 time.Duration
	requests int
	cpu      time.Duration
}

var (
	reqsRe    = regexp.MustCompile(`(\d+) requests in`)
	perSecRe  = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	latencyRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	errorsRe  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

// load runs wrk against t with n connections for d.
func load(t target, n int, d time.Duration) (result, error) {
	threads := min(n, 2)
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(n), "-d", fmt.Sprintf("%ds", max(1, int(d.Seconds()))), "--latency"}
	if t.host != "" {
		args = append(args, "-H", "Host: "+t.host)
	}
	var before time.Duration
	if t.pids != nil {
		before = cpuOf(t.pids())
	}
	out, err := exec.Command("wrk", append(args, t.url)...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	var r result
	if t.pids != nil {
		r.cpu = cpuOf(t.pids()) - before
	}
	text := string(out)
	if m := errorsRe.FindString(text); m != "" {
		return r, fmt.Errorf("wrk saw failures (%s):\n%s", m, text)
	}
	m := perSecRe.FindStringSubmatch(text)
	rm := reqsRe.FindStringSubmatch(text)
	if m == nil || rm == nil {
		return r, fmt.Errorf("wrk's output is not what it should be:\n%s", text)
	}
	r.perSec, _ = strconv.ParseFloat(m[1], 64)
	r.requests, _ = strconv.Atoi(rm[1])
	for _, l := range latencyRe.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[l[3]]
		if l[1] == "50" {
			r.p50 = time.Duration(v * float64(unit))
		} else {
			r.p99 = time.Duration(v * float64(unit))
		}
	}
	return r, nil
}

// cpuOf sums the user and system time of processes and their threads.
func cpuOf(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) in parentheses.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += utime + stime
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Nanoseconds())/1e6) }

// proxy is a proxy process this program started.
type proxy struct {
	cmd  *exec.Cmd
	addr string
}

// pids are the proxy's process and its children (nginx's workers).
func (p *proxy) pids() []int {
	out := []int{p.cmd.Process.Pid}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.cmd.Process.Pid, p.cmd.Process.Pid))
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

func stop(p *proxy) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startNginx(dir, upstream string) (*proxy, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream app { server %[2]s; keepalive 64; }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`, dir, upstream, addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return startProxy(exec.Command("nginx", "-p", dir, "-c", path, "-g", "daemon off;"), addr)
}

func startHAProxy(dir, upstream string) (*proxy, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`global
  nbthread 2
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend in
  bind %s
  default_backend app
backend app
  http-reuse always
  server s1 %s
`, addr, upstream)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return startProxy(exec.Command("haproxy", "-db", "-f", path), addr)
}

// startProxy starts cmd and waits until addr accepts connections.
func startProxy(cmd *exec.Cmd, addr string) (*proxy, error) {
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proxy{cmd: cmd, addr: addr}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			stop(p)
			return nil, errors.New(cmd.Path + " did not start: " + stderr.String())
		}
	}
}
