package local

import (
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/coligo/coligo/internal/logfmt"
)

// LoggerArg marks the command line with which the containerd shim starts the
// coligo binary as an instance's logging binary.
const LoggerArg = "--coligo-log-file"

// IsLogger reports whether args are those of a logging binary start.
func IsLogger(args []string) bool {
	for _, a := range args {
		if a == LoggerArg {
			return true
		}
	}
	return false
}

// RunLogger is the logging binary: the shim passes the instance's stdout and
// stderr as fds 3 and 4 and waits for fd 5 to close. It writes both streams
// to the log file as timestamped records (logfmt), keeping at most max bytes: when the file reaches half of
// it, it becomes <file>.1 and a new file starts.
func RunLogger(args []string) int {
	var path string
	limit := int64(1 << 20)
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case LoggerArg:
			path = args[i+1]
		case "--coligo-log-max":
			if n, err := strconv.ParseInt(args[i+1], 10, 64); err == nil && n > 0 {
				limit = n
			}
		}
	}
	stdout, stderr, ready := os.NewFile(3, "stdout"), os.NewFile(4, "stderr"), os.NewFile(5, "ready")
	if path == "" || stdout == nil || stderr == nil || ready == nil {
		return 2
	}
	w, err := newRotating(path, limit)
	if err != nil {
		return 1
	}
	ready.Close()
	var wg sync.WaitGroup
	for stream, r := range map[string]io.Reader{"stdout": stdout, "stderr": stderr} {
		wg.Go(func() { io.Copy(logfmt.NewWriter(w, stream), r) })
	}
	wg.Wait()
	w.close()
	return 0
}

// rotating is a size-bounded log: at most limit bytes in <path> and <path>.1.
type rotating struct {
	mu    sync.Mutex
	path  string
	limit int64
	f     *os.File
	size  int64
}

func newRotating(path string, limit int64) (*rotating, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &rotating{path: path, limit: limit, f: f, size: fi.Size()}, nil
}

func (r *rotating) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := len(p)
	half := r.limit / 2
	if int64(len(p)) > half {
		p = p[int64(len(p))-half:] // a single write larger than half keeps its end
	}
	if r.size+int64(len(p)) > half {
		r.f.Close()
		os.Rename(r.path, r.path+".1")
		f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
		if err != nil {
			return 0, err
		}
		r.f, r.size = f, 0
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	if err != nil {
		return n, err
	}
	return total, nil
}

func (r *rotating) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f.Close()
}
