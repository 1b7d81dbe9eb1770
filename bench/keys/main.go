// Command keys benchmarks secret create and get on a project whose data key
// is wrapped by a KMS v2 plugin (coligo-kms-pkcs11 on a SoftHSM2 token)
// against a project on the local root key, in the same server and run:
// with the data key cached, the two should be close (target: reads within
// 1.1×).
//
//	go run ./bench/keys -bin bin/coligo -kms bin/coligo-kms-pkcs11   (needs softhsm2)
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/bench/internal/benchkit"
)

func main() {
	bin := flag.String("bin", "bin/coligo", "coligo binary")
	kms := flag.String("kms", "bin/coligo-kms-pkcs11", "coligo-kms-pkcs11 binary")
	n := flag.Int("n", 2000, "requests per operation")
	conc := flag.Int("c", 8, "concurrent clients")
	flag.Parse()
	if err := run(*bin, *kms, *n, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin, kmsBin string, n, conc int) error {
	dir, err := os.MkdirTemp("", "coligo-bench-keys")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tokens := filepath.Join(dir, "tokens")
	os.Mkdir(tokens, 0o700)
	conf := filepath.Join(dir, "softhsm2.conf")
	os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\n"), 0o600)
	os.Setenv("SOFTHSM2_CONF", conf)
	os.Setenv("COLIGO_KMS_PIN", "bench-pin")
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "bench-pin", "--so-pin", "bench-so").CombinedOutput(); err != nil {
		return fmt.Errorf("softhsm2-util: %v: %s", err, out)
	}
	socket := filepath.Join(dir, "kms.sock")
	plugin := exec.Command(kmsBin, "serve", "--socket", socket, "--token", "bench", "--create-key")
	if err := plugin.Start(); err != nil {
		return err
	}
	defer func() { plugin.Process.Kill(); plugin.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			break
		}
		if i == 500 {
			return fmt.Errorf("the plugin did not listen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, err := benchkit.Start(bin, "--containerd-address", "", "--kms-provider", "hsm="+socket, "--max-secrets", "0")
	if err != nil {
		return err
	}
	defer s.Stop()
	ctx := context.Background()
	c := s.Client()
	c.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	projects := map[string]string{}
	for _, provider := range []string{"local", "hsm"} {
		p, err := c.CreateProject(ctx, api.ProjectPrototype{Name: provider, Encryption: &api.EncryptionPrototype{Provider: provider}})
		if err != nil {
			return err
		}
		for p.Status != "active" {
			time.Sleep(10 * time.Millisecond)
			if p, err = c.GetProject(ctx, p.ID); err != nil {
				return err
			}
		}
		projects[provider] = p.ID
	}
	value := strings.Repeat("s", 64)
	fmt.Printf("secrets, %d requests per operation, %d clients, one server; the hsm project's data key is wrapped by coligo-kms-pkcs11 on SoftHSM2\n\n", n, conc)
	fmt.Println("| operation | local key req/s | KMS plugin req/s | local p50 | KMS p50 | KMS p50 ÷ local p50 | local req/s ÷ KMS req/s |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, op := range []string{"create", "get"} {
		// Two rounds, the order swapped in the second; the better of each.
		var res [2]benchkit.Result
		for round := range 2 {
			for j := range 2 {
				i := (j + round) % 2
				provider := []string{"local", "hsm"}[i]
				project := projects[provider]
				f := func(k int) error {
					name := fmt.Sprintf("s-%d-%06d", round, k)
					if op == "create" {
						_, err := c.CreateSecret(ctx, project, api.SecretPrototype{Name: name, Format: "generic", Data: map[string]string{"password": value}})
						return err
					}
					_, err := c.GetSecret(ctx, project, name)
					return err
				}
				r, err := benchkit.Measure(op+" "+provider, n, conc, f)
				if err != nil {
					return err
				}
				if r.PerSec > res[i].PerSec {
					res[i] = r
				}
			}
		}
		fmt.Printf("| secret %s | %.0f | %.0f | %s | %s | %.2f | %.2f |\n", op, res[0].PerSec, res[1].PerSec,
			res[0].P50.Round(time.Microsecond), res[1].P50.Round(time.Microsecond), float64(res[1].P50)/float64(res[0].P50), res[0].PerSec/res[1].PerSec)
	}
	return nil
}
