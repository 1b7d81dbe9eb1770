package benchkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"time"

	"github.com/coligo/coligo/api"
)

var fresh = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}

// FirstByte sends one request on a new connection and returns the time to
// the first byte of the response.
func FirstByte(url, host string) (time.Duration, error) {
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	var first time.Time
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}))
	t0 := time.Now()
	resp, err := fresh.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return first.Sub(t0), nil
}

// WaitAppInstances polls an app's instances until ok holds of how many
// are ready and how many there are.
func WaitAppInstances(ctx context.Context, c *api.Client, project, name string, ok func(ready, all int) bool) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		l, err := c.ListAppInstances(ctx, project, name, api.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, in := range l.Instances {
			if in.StatusDetails.Ready {
				ready++
			}
		}
		if ok(ready, len(l.Instances)) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("app %s: instances not as wanted within 2 minutes", name)
}

// Steady is a local server with the sample app of examples/hello deployed
// as one instance of 2 vCPU that takes 1000 requests at once: what the
// router benchmarks put load on.
type Steady struct {
	Server  *Server
	Project *api.Project
	App     *api.App
	stop    []func()
}

// StartSteady starts a server on the test parts (local engine, CNI subnet
// 10.216.0.0/16) and deploys the steady app in project name; Stop ends it.
func StartSteady(ctx context.Context, bin, name string) (*Steady, error) {
	containerdAddr, cniDir := Env("COLIGO_TEST_CONTAINERD"), os.Getenv("COLIGO_TEST_CNI_BIN_DIR")
	reg, user, pass := Env("COLIGO_TEST_REGISTRY"), Env("COLIGO_TEST_REGISTRY_USER"), Env("COLIGO_TEST_REGISTRY_PASSWORD")
	image, err := PushHello(ctx, reg, user, pass)
	if err != nil {
		return nil, err
	}
	s, err := Start(bin, "--containerd-address", containerdAddr, "--cni-bin-dir", cniDir, "--cni-subnet", "10.216.0.0/16",
		"--insecure-registry", reg, "--userns=false")
	if err != nil {
		return nil, err
	}
	st := &Steady{Server: s, stop: []func(){s.Stop}}
	p, cleanup, err := s.Project(ctx, name, reg, user, pass)
	if err != nil {
		st.Stop()
		return nil, err
	}
	st.Project, st.stop = p, append(st.stop, cleanup)
	one, concurrency := 1, 1000
	c := s.Client()
	if _, err := c.CreateApp(ctx, p.ID, api.AppPrototype{Name: "steady", AppSpec: api.AppSpec{ImageReference: image, ImageSecret: "reg",
		ScaleMinInstances: &one, ScaleMaxInstances: &one, ScaleConcurrency: &concurrency, ScaleCPULimit: "2", ScaleMemoryLimit: "4G"}}); err != nil {
		st.Stop()
		return nil, err
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if st.App, err = c.GetApp(ctx, p.ID, "steady"); err == nil && st.App.Status == "ready" {
			return st, nil
		}
		if time.Now().After(deadline) {
			st.Stop()
			return nil, fmt.Errorf("the app is not ready: %+v %v", st.App, err)
		}
	}
}

// Stop deletes the project and stops the server.
func (st *Steady) Stop() {
	for i := len(st.stop) - 1; i >= 0; i-- {
		st.stop[i]()
	}
}
