// Command hello is the sample workload of `make demo`. As a job run's
// instance it prints which array index it is and greets the name it was
// given; as an app (PORT set, no JOB_INDEX) it serves HTTP on $PORT:
// GET /?sleep=MS answers "hello <name> from <revision>" after MS
// milliseconds.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	name := os.Getenv("GREETING_NAME")
	if name == "" {
		name = "world"
	}
	port := os.Getenv("PORT")
	if port == "" || os.Getenv("JOB_INDEX") != "" {
		fmt.Printf("hello %s from index %s of %s (job run %s)\n", name, os.Getenv("JOB_INDEX"), os.Getenv("JOB_ARRAY_SIZE"), os.Getenv("CE_JOBRUN"))
		return
	}
	greeting := fmt.Sprintf("hello %s from %s\n", name, os.Getenv("K_REVISION"))
	srv := &http.Server{Addr: ":" + port, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ms, err := strconv.Atoi(r.URL.Query().Get("sleep")); err == nil && ms > 0 {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprint(w, greeting)
	})}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		srv.Shutdown(context.Background()) // finish the requests in flight
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
