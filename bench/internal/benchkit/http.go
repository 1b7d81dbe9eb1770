package benchkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
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
