// Command testprog is the program inside the test images (built static,
// CGO_ENABLED=0). Its first argument picks what it does:
//
//	testprog serve ADDR      serve GET / with the page and the JOB_INDEX, if any
//	testprog app             an app on $PORT: / answers "hello from $K_REVISION $VERSION",
//	                         /env the environment, /events the events POSTed to it, /sleep?ms=N after N ms, /file?path=P a
//	                         file, /live 200 until /sicken makes it 500; SIGTERM finishes
//	                         requests in flight, then exits
//	testprog fetch URL [HOST] GET URL (with Host HOST), retrying for 3 s; print the
//	                         body; exit 1 when there is no answer or its status is 400 or more
//	testprog alloc MIB       allocate and touch MIB mebibytes, then exit 0
//	testprog job             print JOB_INDEX and JOB_ARRAY_SIZE; exit 1 if JOB_INDEX is in FAIL_INDICES
//	testprog forks N         start N sleeping processes, stopping at the first failure; print how
//	                         many started and why it stopped
//	testprog escape          try what a sandbox must refuse (keyctl, bpf, io_uring, a raw
//	                         socket, mknod) and print one "name=result" line each: "ok" or
//	                         the errno
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testprog serve|fetch|alloc|job ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		page := "coligo-test-page\n"
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, page) })
		fmt.Println("serving on", os.Args[2])
		if err := http.ListenAndServe(os.Args[2], nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "app":
		app()
	case "fetch":
		c := &http.Client{Timeout: time.Second}
		deadline := time.Now().Add(3 * time.Second)
		req, err := http.NewRequest("GET", os.Args[2], nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if len(os.Args) > 3 {
			req.Host = os.Args[3]
		}
		for {
			resp, err := c.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				fmt.Print(string(b))
				if resp.StatusCode >= 400 {
					fmt.Fprintln(os.Stderr, "status", resp.StatusCode)
					os.Exit(1)
				}
				os.Exit(0)
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "fetch failed:", err)
				os.Exit(1)
			}
			time.Sleep(200 * time.Millisecond)
		}
	case "alloc":
		n, _ := strconv.Atoi(os.Args[2])
		b := make([]byte, n<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("allocated", n, "MiB")
	case "escape":
		escape()
	case "forks":
		n, _ := strconv.Atoi(os.Args[2])
		started := 0
		var err error
		for ; started < n; started++ {
			if _, err = os.StartProcess("/bin/sleep", []string{"sleep", "30"}, &os.ProcAttr{}); err != nil {
				break
			}
		}
		fmt.Printf("started %d of %d: %v\n", started, n, err)
	case "job":
		idx := os.Getenv("JOB_INDEX")
		fmt.Printf("index %s of %s\n", idx, os.Getenv("JOB_ARRAY_SIZE"))
		for _, f := range strings.Split(os.Getenv("FAIL_INDICES"), ",") {
			if f != "" && f == idx {
				fmt.Fprintln(os.Stderr, "failing on purpose")
				os.Exit(1)
			}
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func app() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s %s\n", os.Getenv("K_REVISION"), os.Getenv("VERSION"))
	})
	// /events: a POST (a subscription's event) is kept as a line of its
	// CloudEvents headers and body; a GET lists the lines.
	var evMu sync.Mutex
	var events []string
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		evMu.Lock()
		defer evMu.Unlock()
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			events = append(events, fmt.Sprintf("id=%s source=%s type=%s specversion=%s time=%s tenant=%s ct=%s body=%s",
				r.Header.Get("Ce-Id"), r.Header.Get("Ce-Source"), r.Header.Get("Ce-Type"), r.Header.Get("Ce-Specversion"),
				r.Header.Get("Ce-Time"), r.Header.Get("Ce-Tenant"), r.Header.Get("Content-Type"), b))
			return
		}
		fmt.Fprint(w, strings.Join(events, "\n"))
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for k, vs := range r.Header {
			lines = append(lines, k+": "+strings.Join(vs, ", "))
		}
		slices.Sort(lines)
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		env := os.Environ()
		slices.Sort(env)
		fmt.Fprintln(w, strings.Join(env, "\n"))
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			fmt.Fprintf(w, "slept %d ms in %s\n", ms, os.Getenv("HOSTNAME"))
		case <-r.Context().Done():
		}
	})
	var sick atomic.Bool
	mux.HandleFunc("/live", func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/sicken", func(w http.ResponseWriter, r *http.Request) { sick.Store(true) })
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	srv := &http.Server{Addr: ":" + os.Getenv("PORT"), Handler: mux}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		<-stop
		fmt.Println("SIGTERM: finishing requests")
		srv.Shutdown(context.Background())
	}()
	fmt.Println("app listening on", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// escape tries, one by one, calls that a container sandbox refuses, and
// prints what each returned.
func escape() {
	try := func(name string, err error) {
		if err == nil {
			fmt.Printf("%s=ok\n", name)
			return
		}
		if errno, ok := err.(syscall.Errno); ok {
			fmt.Printf("%s=%s\n", name, errnoName(errno))
			return
		}
		fmt.Printf("%s=%v\n", name, err)
	}
	errOf := func(_, _ uintptr, e syscall.Errno) error {
		if e != 0 {
			return e
		}
		return nil
	}
	const keyctlGetKeyringID, keySpecSessionKeyring = 0, ^uintptr(2) // KEYCTL_GET_KEYRING_ID, -3
	try("keyctl", errOf(syscall.Syscall(syscall.SYS_KEYCTL, keyctlGetKeyringID, keySpecSessionKeyring, 1)))
	attr := make([]byte, 128) // a zeroed bpf_attr: BPF_MAP_CREATE of nothing
	try("bpf", errOf(syscall.Syscall(321 /* SYS_BPF */, 0, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))))
	params := make([]byte, 120) // struct io_uring_params
	fd, _, e := syscall.Syscall(425 /* SYS_IO_URING_SETUP */, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if e == 0 {
		syscall.Close(int(fd))
	}
	try("io_uring", errOf(0, 0, e))
	s, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	if err == nil {
		syscall.Close(s)
	}
	try("raw_socket", err)
	try("mknod", syscall.Mknod("/coligo-null", syscall.S_IFCHR|0o600, 1<<8|3))
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EPERM:
		return "EPERM"
	case syscall.EACCES:
		return "EACCES"
	case syscall.EINVAL:
		return "EINVAL"
	case syscall.ENOSYS:
		return "ENOSYS"
	}
	return fmt.Sprintf("errno%d", int(e))
}
