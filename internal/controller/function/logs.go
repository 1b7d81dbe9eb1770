package function

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coligo/coligo/internal/engine"
)

// Logs of ended instances: a function's instances come and go with its
// requests (after scale_down_delay, one second by default), and their logs
// with them. The controller keeps the last lines of each that ends, in
// memory only, for `coligo function logs`.
const (
	endedTail  = 200      // lines kept of one ended instance
	endedBytes = 64 << 10 // kept of one function's ended instances together
)

// Instances lists the instance ids of a function's generations being
// served, sorted.
func (c *Controller) Instances(project, name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.fns {
		if s.project.ID == project && s.fn.Name == name {
			for _, w := range s.ready {
				out = append(out, w.ID)
			}
		}
	}
	slices.Sort(out)
	return out
}

// EndedLogs is the last lines of a function's ended instances, oldest
// first, each instance's under a header.
func (c *Controller) EndedLogs(project, name string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ended[project+"/"+name])
}

// keepLogs keeps the last lines of an instance of s that ends, unless the
// function is gone (deleted, or its project).
func (c *Controller) keepLogs(s *served, w Warm) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "==> %s (ended %s) <==\n", w.ID, time.Now().UTC().Format(time.RFC3339))
	if err := c.cfg.Engine.Logs(ctx, w.Project, w.ID, &buf, engine.LogOptions{Tail: endedTail}); err != nil {
		c.log.Debug("read the logs of an ending function instance", "instance", w.ID, "err", err)
		return
	}
	key := s.project.ID + "/" + s.fn.Name
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.serves(s.project.ID, s.fn.Name) {
		delete(c.ended, key)
		return
	}
	c.ended[key] = appendBounded(c.ended[key], buf.Bytes(), endedBytes)
}

// appendBounded appends add to b and drops the oldest lines past limit
// bytes.
func appendBounded(b, add []byte, limit int) []byte {
	b = append(b, add...)
	over := len(b) - limit
	if over <= 0 {
		return b
	}
	// Cut at the start of a line: the first after over, or over itself.
	if b[over-1] != '\n' {
		if i := bytes.IndexByte(b[over:], '\n'); i >= 0 {
			over += i + 1
		} else {
			over = len(b)
		}
	}
	return slices.Clone(b[over:])
}

// serves reports whether some generation of a function is served (c.mu
// held).
func (c *Controller) serves(project, name string) bool {
	for _, s := range c.fns {
		if s.project.ID == project && s.fn.Name == name {
			return true
		}
	}
	return false
}

// forgetLogs drops the kept logs of functions no longer served (c.mu
// held).
func (c *Controller) forgetLogs() {
	for key := range c.ended {
		project, name, _ := strings.Cut(key, "/")
		if !c.serves(project, name) {
			delete(c.ended, key)
		}
	}
}
