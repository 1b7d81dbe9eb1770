// Command router compares coligo's router with the proxies users would
// otherwise put in front of an app, in one run, in front of the same
// instance (the sample app of examples/hello with 2 vCPU, on coligo's CNI
// bridge): straight to the instance (the baseline), coligo's router, nginx
// (2 workers, upstream keepalive) and haproxy (2 threads, http-reuse
// always), both from Debian, each loaded by wrk (Debian) at 1, 8 and 64
// connections. It reports req/s, p50 and p99 as wrk measures them, each
// proxy's CPU seconds per 10,000 requests (user + system time of its
// processes, from /proc) and the system calls it makes per request (from
// perf, when it is installed). With -rounds N each row is measured N times,
// the paths taking turns, and the medians are reported, with the range of
// req/s: the machine is shared, and one run of a path can fall on a busy
// moment.
//
//	go run ./bench/router -bin bin/coligo   (needs the parts of scripts/parts.sh, nginx, haproxy, wrk, and perf for the system calls)
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
	"sort"
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
	rounds := flag.Int("rounds", 1, "measure each row this many times, the paths taking turns, and report the medians")
	floor := flag.Bool("floor", false, "also measure three minimal Go proxies: a goroutine per connection, an epoll loop and an io_uring loop per core (floor.go, uring.go)")
	serve := flag.String("serve-floor", "", "serve as a floor proxy of this kind (goroutine, epoll or uring): how -floor runs them")
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
	if err := run(*bin, *dur, *conns, *rounds, *floor); err != nil {
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

func run(bin string, dur time.Duration, conns string, rounds int, floor bool) error {
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
			{"uring", "floor: minimal Go proxy, an io_uring loop per core"},
		} {
			fp, err := startFloor(f.kind, addr)
			if err != nil {
				return err
			}
			defer stop(fp)
			targets = append(targets, target{name: f.name, url: "http://" + fp.addr + "/", pids: fp.pids})
		}
	}
	_, perfErr := exec.LookPath("perf")
	fmt.Printf("GET / of the sample app (2 vCPU) through each path, wrk for %s per row, 2 cores shared by load, proxy and app", dur)
	if rounds > 1 {
		fmt.Printf("; medians of %d rounds, the paths taking turns", rounds)
	}
	fmt.Print("\n\n| connections | path | req/s | p50 | p99 | req/s ÷ direct | added p50 | CPU s per 10k requests | system calls per request |\n|---|---|---|---|---|---|---|---|---|\n")
	var against []string
	for _, field := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return fmt.Errorf("-c %q: want connection counts", conns)
		}
		runs := make([][]result, len(targets))
		for range max(rounds, 1) {
			for i, t := range targets {
				// A short warm-up opens the keep-alive connections.
				if _, err := load(t, n, time.Second, false); err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
				r, err := load(t, n, dur, perfErr == nil)
				if err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
				if i > 0 {
					base := runs[0][len(runs[i])]
					r.ratio, r.added = r.perSec/base.perSec, r.p50-base.p50
				}
				runs[i] = append(runs[i], r)
			}
		}
		for i, t := range targets {
			r := medians(runs[i])
			perSec := fmt.Sprintf("%.0f", r.perSec)
			if len(runs[i]) > 1 {
				perSec += fmt.Sprintf(" (%.0f–%.0f)", r.minPerSec, r.maxPerSec)
			}
			if i == 0 {
				fmt.Printf("| %d | %s | %s | %s | %s | 1.00 | | | |\n", n, t.name, perSec, ms(r.p50), ms(r.p99))
				continue
			}
			calls := ""
			if r.syscalls > 0 {
				calls = fmt.Sprintf("%.2f", r.syscalls)
			}
			fmt.Printf("| %d | %s | %s | %s | %s | %.2f | %s | %.2f | %s |\n", n, t.name, perSec, ms(r.p50), ms(r.p99),
				r.ratio, ms(r.added), r.cpuPer10k, calls)
		}
		// The targets of issue 14, round by round: coligo's req/s against
		// the better proxy's, and its CPU per request against the
		// cheaper one's.
		var perSec, cpu []float64
		for k := range runs[0] {
			c, ng, ha := runs[1][k], runs[2][k], runs[3][k]
			perSec = append(perSec, c.perSec/max(ng.perSec, ha.perSec))
			cpu = append(cpu, c.cpuPer10k/min(ng.cpuPer10k, ha.cpuPer10k))
		}
		against = append(against, fmt.Sprintf("%d connections: req/s %s, CPU per request %s", n, spread(perSec), spread(cpu)))
	}
	fmt.Println("\ncoligo's router ÷ the better of nginx and haproxy (median, and range over the rounds):")
	for _, l := range against {
		fmt.Println("  " + l)
	}
	return nil
}

// median sorts v and returns its median.
func median(v []float64) float64 {
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// spread is the median of v, and its range when v has more than one.
func spread(v []float64) string {
	m := median(v)
	if len(v) == 1 {
		return fmt.Sprintf("%.2f×", m)
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", m, v[0], v[len(v)-1])
}

type result struct {
	perSec    float64
	p50, p99  time.Duration
	cpuPer10k float64 // CPU seconds per 10,000 requests
	syscalls  float64 // system calls per request; 0: not counted
	ratio     float64 // req/s ÷ the baseline's of the same round
	added     time.Duration
	minPerSec float64
	maxPerSec float64
}

// medians returns the median of each measure of rs, and the range of
// req/s.
func medians(rs []result) result {
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	out := result{
		perSec:    med(func(r result) float64 { return r.perSec }),
		p50:       time.Duration(med(func(r result) float64 { return float64(r.p50) })),
		p99:       time.Duration(med(func(r result) float64 { return float64(r.p99) })),
		cpuPer10k: med(func(r result) float64 { return r.cpuPer10k }),
		syscalls:  med(func(r result) float64 { return r.syscalls }),
		ratio:     med(func(r result) float64 { return r.ratio }),
		added:     time.Duration(med(func(r result) float64 { return float64(r.added) })),
		minPerSec: rs[0].perSec,
		maxPerSec: rs[0].perSec,
	}
	for _, r := range rs {
		out.minPerSec, out.maxPerSec = min(out.minPerSec, r.perSec), max(out.maxPerSec, r.perSec)
	}
	return out
}

var (
	reqsRe    = regexp.MustCompile(`(\d+) requests in`)
	perSecRe  = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	latencyRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	errorsRe  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

// load runs wrk against t with n connections for d, counting the system
// calls of t's processes with perf when count.
func load(t target, n int, d time.Duration, count bool) (result, error) {
	threads := min(n, 2)
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(n), "-d", fmt.Sprintf("%ds", max(1, int(d.Seconds()))), "--latency"}
	if t.host != "" {
		args = append(args, "-H", "Host: "+t.host)
	}
	var before time.Duration
	var perf *exec.Cmd
	var perfOut strings.Builder
	if t.pids != nil {
		before = cpuOf(t.pids())
		if count {
			// Counted while wrk runs: from its start to a moment before its end.
			pids := make([]string, 0, 4)
			for _, pid := range t.pids() {
				pids = append(pids, strconv.Itoa(pid))
			}
			perf = exec.Command("perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", strings.Join(pids, ","),
				"--", "sleep", strconv.FormatFloat(max(d.Seconds()-0.5, 0.5), 'f', 1, 64))
			perf.Stderr = &perfOut
			if err := perf.Start(); err != nil {
				return result{}, fmt.Errorf("perf: %w", err)
			}
		}
	}
	out, err := exec.Command("wrk", append(args, t.url)...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	var r result
	var cpu time.Duration
	if t.pids != nil {
		cpu = cpuOf(t.pids()) - before
	}
	var calls float64
	var counted time.Duration
	if perf != nil {
		if err := perf.Wait(); err != nil {
			return result{}, fmt.Errorf("perf: %w: %s", err, perfOut.String())
		}
		f := strings.Split(strings.TrimSpace(perfOut.String()), ",")
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return result{}, fmt.Errorf("perf's output is not what it should be: %s", perfOut.String())
		}
		calls, counted = v, time.Duration(max(d.Seconds()-0.5, 0.5)*float64(time.Second))
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
	requests, _ := strconv.Atoi(rm[1])
	if requests > 0 {
		r.cpuPer10k = cpu.Seconds() / float64(requests) * 10000
	}
	if calls > 0 && r.perSec > 0 {
		// By wrk's rate over the part of its run perf counted.
		r.syscalls = calls / (r.perSec * counted.Seconds())
	}
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
