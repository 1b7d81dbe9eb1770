// Command routercore serves the router's data path alone (its io_uring
// loops, -loops, and its HTTP/1.1 core), in front of one instance at -up,
// for profiling it with a load generator on this machine:
//
//	go run ./bench/routercore -addr 127.0.0.1:9104 -up 127.0.0.1:9200 -cpuprofile /tmp/core.prof
//	wrk -t2 -c8 -d5s -H 'Host: app.p.localhost' http://127.0.0.1:9104/
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/coligo/coligo/internal/router"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9104", "where the core listens")
	up := flag.String("up", "127.0.0.1:9200", "the instance")
	prof := flag.String("cpuprofile", "", "write a CPU profile here until SIGINT")
	loops := flag.Int("loops", max(runtime.GOMAXPROCS(0)-1, 1), "io_uring loops to serve on, as coligo does (0: the goroutine core)")
	flag.Parse()
	r := router.New(router.Config{Logger: slog.New(slog.DiscardHandler)})
	r.SetRoutes(map[string]router.Route{"app.p.localhost": {Revision: "p/app-00001", Public: true}})
	r.SetRevision("p/app-00001", router.RevisionConfig{Concurrency: 1000, Timeout: time.Minute}, []router.Endpoint{{ID: "i", Addr: *up}})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		go func() {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
			<-ch
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	s := router.NewServer(r, &http.Server{Handler: r})
	if *loops > 0 {
		if err := s.UseRings(*loops); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	s.Serve(ln)
}
