package itest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SoftHSMModule is where Debian's softhsm2 puts its PKCS#11 library.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// HSM is a SoftHSM2 token of a test's own.
type HSM struct {
	Module, Token, PIN string
	Conf               string // SOFTHSM2_CONF of the token's store
}

// SoftHSM initialises a fresh SoftHSM2 token in a temporary store and sets
// SOFTHSM2_CONF for the test (processes it starts inherit it). Without
// softhsm2 it skips, or fails in CI.
func SoftHSM(t *testing.T) HSM {
	t.Helper()
	if _, err := os.Stat(SoftHSMModule); err != nil {
		msg := "softhsm2 is not installed: run through 'make test', which installs it"
		Missing(t, msg)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tokens)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	h := HSM{Module: SoftHSMModule, Token: "coligo-test", PIN: "4711-test", Conf: conf}
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", h.Token, "--pin", h.PIN, "--so-pin", "so-4711").CombinedOutput()
	if err != nil {
		t.Fatalf("init SoftHSM2 token: %v: %s", err, out)
	}
	return h
}
