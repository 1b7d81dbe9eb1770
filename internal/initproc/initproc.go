package initproc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// Paths inside the instance, under the engine's per-instance tmpfs mounted
// read-only at Dir.
const (
	Dir     = "/.coligo"
	Binary  = Dir + "/init"  // this program
	EnvFile = Dir + "/env"   // NUL-separated KEY=VALUE entries
	Report  = Dir + "/ready" // FIFO: the engine reads one report line
)

// Report lines.
const (
	ReportOK        = "ok"
	ReportNoCommand = "nocommand" // followed by a space and the reason
	ReportFailed    = "failed"    // followed by a space and the reason
)

// EncodeEnv is the env file's content for env (KEY=VALUE entries).
func EncodeEnv(env []string) []byte {
	var b bytes.Buffer
	for _, kv := range env {
		b.WriteString(kv)
		b.WriteByte(0)
	}
	return b.Bytes()
}

// ParseEnv reads an env file: NUL-terminated KEY=VALUE entries, each with a
// non-empty key free of '=' and NUL.
func ParseEnv(b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[len(b)-1] != 0 {
		return nil, errors.New("env file does not end with NUL")
	}
	var out []string
	for _, e := range strings.Split(string(b[:len(b)-1]), "\x00") {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return nil, fmt.Errorf("env entry %d has no KEY=", len(out))
		}
		out = append(out, e)
	}
	return out, nil
}

// Merge overlays env on base: a key of env replaces the same key of base.
func Merge(base, env []string) []string {
	idx := map[string]int{}
	out := make([]string, 0, len(base)+len(env))
	for _, list := range [][]string{base, env} {
		for _, kv := range list {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := idx[k]; ok {
				out[i] = kv
				continue
			}
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// LookPath finds file as execvp would, in the PATH of env.
func LookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, executable(file)
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("exec: %q: %w", p, os.ErrPermission)
	}
	return nil
}

// Main runs args[0] with args[1:] as PID 1's child and returns the exit code
// init should end with: the child's, or 128+N when a signal N ended it.
func Main(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "coligo-init: no command")
		report(ReportNoCommand + " no command")
		return 127
	}
	env := os.Environ()
	if b, err := os.ReadFile(EnvFile); err == nil {
		extra, err := ParseEnv(b)
		clear(b)
		if err != nil {
			fmt.Fprintln(stderr, "coligo-init:", err)
			report(ReportFailed + " " + err.Error())
			return 126
		}
		env = Merge(env, extra)
	} else if !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(stderr, "coligo-init: read env:", err)
		report(ReportFailed + " read env")
		return 126
	}
	path, err := LookPath(args[0], env)
	if err != nil {
		return failExec(stderr, err)
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2}})
	if err != nil {
		return failExec(stderr, fmt.Errorf("exec %q: %w", args[0], err))
	}
	report(ReportOK)
	for sig := range sigs {
		s := sig.(syscall.Signal)
		if s != syscall.SIGCHLD {
			if s != syscall.SIGURG { // the Go runtime's own preemption signal
				syscall.Kill(pid, s)
			}
			continue
		}
		if code, done := reap(pid); done {
			return code
		}
	}
	return 0
}

// reap collects every exited child; done reports the main child's end.
func reap(main int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid == main {
			done = true
			switch {
			case ws.Exited():
				code = ws.ExitStatus()
			case ws.Signaled():
				code = 128 + int(ws.Signal())
			}
		}
	}
}

// failExec reports a command that cannot run: missing or not an executable
// is the image's fault (127, as a shell says), anything else 126.
func failExec(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "coligo-init:", err)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOEXEC) ||
		errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "not found") {
		report(ReportNoCommand + " " + err.Error())
		return 127
	}
	report(ReportFailed + " " + err.Error())
	return 126
}

// report tells the engine how the start went, if it listens: the FIFO is
// opened without blocking, so an instance started with no reader (after a
// restart of coligo) goes on.
func report(line string) {
	f, err := os.OpenFile(Report, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	f.WriteString(line + "\n")
	f.Close()
}
