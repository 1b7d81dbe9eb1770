package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestKill9KeepsAcknowledgedWrites kills the server while 8 clients create
// secrets; every create that was answered 201 must be there after restart.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	s := startServer(t, "--max-secrets", "0")
	c := s.adminClient()
	p := activeProject(t, c, "crash")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	acked := map[string]string{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 100000; i++ {
				name := fmt.Sprintf("w%d-%06d", w, i)
				val := fmt.Sprintf("value-%d-%d", w, i)
				_, err := c.CreateSecret(context.Background(), p.ID, api.SecretPrototype{Name: name, Format: "generic", Data: map[string]string{"v": val}})
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[name] = val
				mu.Unlock()
			}
		})
	}
	// Let writes run, then pull the plug mid-stream.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.kill9()
	cancel()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}
	s.start() // the store must open cleanly
	for name, val := range acked {
		got, err := c.GetSecret(context.Background(), p.ID, name)
		if err != nil {
			t.Fatalf("acknowledged secret %s lost after kill -9: %v", name, err)
		}
		if got.Data["v"] != val {
			t.Fatalf("secret %s: value changed after kill -9", name)
		}
	}
	t.Logf("%d acknowledged creates survived kill -9", len(acked))
}
