package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"k8s.io/kms/pkg/service"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
	"github.com/coligo/coligo/internal/kms/hsm"
	"github.com/coligo/coligo/internal/seal"
)

// kmsPlugin is a coligo-kms-pkcs11 process on a SoftHSM2 token of the test.
type kmsPlugin struct {
	t      *testing.T
	hsm    itest.HSM
	socket string
	cmd    *exec.Cmd
}

func startKMSPlugin(t *testing.T) *kmsPlugin {
	t.Helper()
	bin := os.Getenv("COLIGO_KMS_BIN")
	if bin == "" {
		if os.Getenv("CI") != "" || os.Getenv("COLIGO_REQUIRE_INTEGRATION") != "" {
			t.Fatal("COLIGO_KMS_BIN is not set: run through make test")
		}
		t.Skip("COLIGO_KMS_BIN is not set: run through make test")
	}
	k := &kmsPlugin{t: t, hsm: itest.SoftHSM(t), socket: filepath.Join(t.TempDir(), "kms.sock")}
	k.start()
	t.Cleanup(k.stop)
	return k
}

func (k *kmsPlugin) run(args ...string) *exec.Cmd {
	bin := os.Getenv("COLIGO_KMS_BIN")
	cmd := exec.Command(bin, append(args, "--token", k.hsm.Token, "--key-label", "coligo-kek")...)
	cmd.Env = append(os.Environ(), "COLIGO_KMS_PIN="+k.hsm.PIN, "SOFTHSM2_CONF="+k.hsm.Conf)
	return cmd
}

func (k *kmsPlugin) start() {
	k.t.Helper()
	k.cmd = k.run("serve", "--socket", k.socket, "--create-key")
	k.cmd.Stderr = os.Stderr
	if err := k.cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", k.socket); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatal("the KMS plugin did not listen within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (k *kmsPlugin) stop() {
	if k.cmd != nil && k.cmd.Process != nil {
		k.cmd.Process.Kill()
		k.cmd.Wait()
		k.cmd = nil
	}
}

// key runs a key command (rotate, disable, enable, destroy) on the token.
func (k *kmsPlugin) key(op, keyID string) {
	k.t.Helper()
	args := []string{"key", op}
	if keyID != "" {
		args = append(args, "--key-id", keyID)
	}
	if out, err := k.run(args...).CombinedOutput(); err != nil {
		k.t.Fatalf("key %s %s: %v: %s", op, keyID, err, out)
	}
}

// waitKeyUnavailable polls a read until it answers 503 key_unavailable (or,
// with want false, until it succeeds).
func waitKeyUnavailable(t *testing.T, c *api.Client, project, secret string, want bool) error {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := c.GetSecret(context.Background(), project, secret)
		var ae *api.Error
		unavailable := errors.As(err, &ae) && ae.StatusCode == 503 && ae.Code == "key_unavailable"
		if unavailable == want && (want || err == nil) {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: %v; want key_unavailable=%v within 15s", secret, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// crashDuring restarts the server with a failpoint, runs a CLI command
// whose output must hold want, waits for the server to kill itself at the
// failpoint, and starts it again without.
func (s *server) crashDuring(t *testing.T, failpoint, want string, args ...string) {
	t.Helper()
	s.stop()
	s.env = []string{"COLIGO_FAILPOINT=" + failpoint}
	s.start()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	r := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + s.admin}, args...)
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("%s: %d %s %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	s.waitExit(30 * time.Second)
	s.env = nil
	s.start()
}

func TestBYOKProjectOnPKCS11Plugin(t *testing.T) {
	k := startKMSPlugin(t)
	s := startServer(t, "--kms-provider", "hsm="+k.socket, "--key-check-interval", "200ms")
	c := s.adminClient()
	ctx := context.Background()
	p, err := c.CreateProject(ctx, api.ProjectPrototype{Name: "byok", Encryption: &api.EncryptionPrototype{Provider: "hsm", KeyID: "coligo-kek:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	p = waitStatus(t, c, p.ID, "active")
	if p.Encryption == nil || p.Encryption.Provider != "hsm" || p.Encryption.KeyID != "coligo-kek:v1" {
		t.Fatalf("project encryption %+v, want provider hsm with key coligo-kek:v1", p.Encryption)
	}
	if _, err := c.CreateProject(ctx, api.ProjectPrototype{Name: "wrongkey", Encryption: &api.EncryptionPrototype{Provider: "hsm", KeyID: "coligo-kek:v9"}}); err == nil || !strings.Contains(err.Error(), "current key") {
		t.Errorf("a project on a key that is not the provider's current one: %v", err)
	}
	local := activeProject(t, c, "plain")
	value := randomValue(t)
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "db", Format: "generic", Data: map[string]string{"password": value}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSecret(ctx, local.ID, api.SecretPrototype{Name: "db", Format: "generic", Data: map[string]string{"password": "local"}}); err != nil {
		t.Fatal(err)
	}
	if ready := s.get(t, "/readyz"); !strings.Contains(ready, "key provider hsm: ok, key coligo-kek:v1") {
		t.Errorf("/readyz does not show the provider's health:\n%s", ready)
	}

	// A restart: the data key is unwrapped by the plugin again.
	s.stop()
	s.start()
	c = s.adminClient()
	if got, err := c.GetSecret(ctx, p.ID, "db"); err != nil || got.Data["password"] != value {
		t.Fatalf("after a restart: %+v %v", got, err)
	}
	if hits := scanDir(t, s.dataDir, []byte(value)); len(hits) != 0 {
		t.Errorf("the secret's value is in clear in %v", hits)
	}
	// Nor the data key: unwrap it with the HSM, as only the plugin can, and
	// look for it (the scan finds the wrapped form, so it does look).
	s.stop()
	wrapped, dek := unwrapWithHSM(t, k, filepath.Join(s.dataDir, "coligo.db"), p.ID)
	b64 := func(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }
	if hits := scanDir(t, s.dataDir, b64(wrapped)); len(hits) == 0 {
		t.Fatal("the scan does not find the wrapped data key it should find")
	}
	if hits := scanDir(t, s.dataDir, dek, b64(dek), []byte(hex.EncodeToString(dek))); len(hits) != 0 {
		t.Errorf("the unwrapped data key is in %v", hits)
	}
	s.start()

	// Revocation: disable the key in the HSM.
	k.key("disable", "coligo-kek:v1")
	err = waitKeyUnavailable(t, c, p.ID, "db", true)
	if !strings.Contains(err.Error(), "hsm") || !strings.Contains(err.Error(), "coligo-kek:v1") || strings.Contains(err.Error(), value) {
		t.Errorf("key_unavailable error should name provider and key, and no value: %v", err)
	}
	if got, err := c.GetSecret(ctx, local.ID, "db"); err != nil || got.Data["password"] != "local" {
		t.Errorf("a project on the local key during the revocation: %v", err)
	}
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "new", Format: "generic", Data: map[string]string{"k": "v"}}); err == nil {
		t.Error("a write to the revoked project succeeded")
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.get(t, "/metrics"), `coligo_key_provider_up{provider="hsm"} 0`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("/metrics does not show the provider down")
		}
	}
	// Back without a restart.
	k.key("enable", "coligo-kek:v1")
	if err := waitKeyUnavailable(t, c, p.ID, "db", false); err != nil {
		t.Fatal(err)
	}

	// The plugin down is the same as a revocation, and comes back alike.
	k.stop()
	waitKeyUnavailable(t, c, p.ID, "db", true)
	k.start()
	waitKeyUnavailable(t, c, p.ID, "db", false)

	// Destruction: the data cannot be read by any means the server has, and
	// a hard delete still completes.
	k.key("destroy", "coligo-kek:v1")
	waitKeyUnavailable(t, c, p.ID, "db", true)
	s.stop()
	s.start()
	c = s.adminClient()
	waitKeyUnavailable(t, c, p.ID, "db", true)
	if err := c.DeleteProject(ctx, p.ID, true); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, p.ID, "")
}

func TestRootKeyRotationSurvivesKill9(t *testing.T) {
	s := startServer(t, "--key-check-interval", "200ms")
	c := s.adminClient()
	ctx := context.Background()
	values := map[string]string{}
	var ids []string
	for _, name := range []string{"r1", "r2", "r3"} {
		p := activeProject(t, c, name)
		v := randomValue(t)
		if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "s", Format: "generic", Data: map[string]string{"v": v}}); err != nil {
			t.Fatal(err)
		}
		values[p.ID] = v
		ids = append(ids, p.ID)
	}
	before, _ := c.GetProject(ctx, ids[0])
	oldKey := before.Encryption.KeyID

	// The server kills itself after re-wrapping one project's key.
	s.crashDuring(t, "rewrap-after-one", "new version local-", "admin", "rotate-root-key")
	c = s.adminClient()
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range ids {
		for {
			p, err := c.GetProject(ctx, id)
			if err == nil && p.Encryption.KeyID != oldKey && strings.HasPrefix(p.Encryption.KeyID, "local-") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("project %s still on key %s 20s after the rotation", id, oldKey)
			}
			time.Sleep(50 * time.Millisecond)
		}
		got, err := c.GetSecret(ctx, id, "s")
		if err != nil || got.Data["v"] != values[id] {
			t.Errorf("secret of project %s after the rotation: %v", id, err)
		}
	}
	events, err := c.AllAuditEvents(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	rotations, rewraps := 0, 0
	for _, ev := range events {
		switch ev.Action {
		case "key.rotate":
			rotations++
		case "key.rewrap":
			rewraps++
		}
	}
	if rotations != 1 || rewraps != 3 {
		t.Errorf("audit log has %d rotations and %d re-wraps, want 1 and 3", rotations, rewraps)
	}
	if r := s.cli(t, filepath.Join(t.TempDir(), "config.yaml"), "", []string{"COLIGO_TOKEN=" + s.admin}, "audit", "list", "--verify"); r.code != 0 {
		t.Errorf("audit chain after the rotation: %s %s", r.stdout, r.stderr)
	}
	// Once no data key needs it, the old root key version leaves the disk.
	old := filepath.Join(s.dataDir, "root-keys", oldKey+".key")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(old); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old root key %s is still on disk 10s after every data key moved", old)
		}
	}
	s.stop()
	s.start()
	for _, id := range ids {
		if got, err := s.adminClient().GetSecret(ctx, id, "s"); err != nil || got.Data["v"] != values[id] {
			t.Errorf("secret of project %s after the old root key was deleted: %v", id, err)
		}
	}
}

func TestKMSKeyRotationRewrapsProjects(t *testing.T) {
	k := startKMSPlugin(t)
	s := startServer(t, "--kms-provider", "hsm="+k.socket, "--default-key-provider", "hsm", "--key-check-interval", "200ms")
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "kmsrot")
	if p.Encryption.Provider != "hsm" {
		t.Fatalf("default provider hsm not used: %+v", p.Encryption)
	}
	value := randomValue(t)
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "s", Format: "generic", Data: map[string]string{"v": value}}); err != nil {
		t.Fatal(err)
	}
	k.key("rotate", "")
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := c.GetProject(ctx, p.ID)
		if err == nil && got.Encryption.KeyID == "coligo-kek:v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("project not re-wrapped with coligo-kek:v2: %+v %v", got.Encryption, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The old version is no longer needed: destroy it, restart, read.
	k.key("destroy", "coligo-kek:v1")
	s.stop()
	s.start()
	if got, err := s.adminClient().GetSecret(ctx, p.ID, "s"); err != nil || got.Data["v"] != value {
		t.Errorf("after re-wrap and destroying the old key version: %v", err)
	}
}

func TestDEKRotationUnderLoadSurvivesKill9(t *testing.T) {
	s := startServer(t, "--key-check-interval", "200ms", "--max-secrets", "0")
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "dekrot")
	const n = 300
	values := make([]string, n)
	for i := range n {
		values[i] = randomValue(t)
		if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: fmt.Sprintf("s-%03d", i), Format: "generic", Data: map[string]string{"v": values[i]}}); err != nil {
			t.Fatal(err)
		}
	}
	// The server kills itself after sealing one batch of records again.
	s.crashDuring(t, "reseal-after-batch", "data key version 2", "project", "rotate-key", "--name", "dekrot")
	c = s.adminClient()
	// Reads and writes go on while the rotation finishes.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; !strings.Contains(s.logs(), "data key rotation done"); i = (i + 7) % n {
		name := fmt.Sprintf("s-%03d", i)
		got, err := c.GetSecret(ctx, p.ID, name)
		if err != nil || got.Data["v"] != values[i] {
			t.Fatalf("read %s during the rotation: %v", name, err)
		}
		values[i] = randomValue(t)
		if _, err := c.ReplaceSecret(ctx, p.ID, name, got.EntityTag, api.SecretReplace{Format: "generic", Data: map[string]string{"v": values[i]}}); err != nil {
			t.Fatalf("write %s during the rotation: %v", name, err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotation did not finish within 30s of the restart")
		}
	}
	for i := range n {
		got, err := c.GetSecret(ctx, p.ID, fmt.Sprintf("s-%03d", i))
		if err != nil || got.Data["v"] != values[i] {
			t.Fatalf("secret %d after the rotation: %v", i, err)
		}
	}
	if got, _ := c.GetProject(ctx, p.ID); got.Encryption.KeyVersion != 2 {
		t.Errorf("key_version %d, want 2", got.Encryption.KeyVersion)
	}
	// A hard delete destroys the new key and leaves nothing behind.
	if err := c.DeleteProject(ctx, p.ID, true); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, p.ID, "")
	if hits := scanDir(t, s.dataDir, []byte(values[0]), []byte(values[n-1])); len(hits) != 0 {
		t.Errorf("values left in %v", hits)
	}
}

// unwrapWithHSM reads a project's wrapped data key from the store file and
// unwraps it with the token, returning both forms.
func unwrapWithHSM(t *testing.T, k *kmsPlugin, dbPath, project string) (wrapped, dek []byte) {
	t.Helper()
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var rec seal.WrappedDEK
	err = db.View(func(tx *bolt.Tx) error { return json.Unmarshal(tx.Bucket([]byte("deks")).Get([]byte(project)), &rec) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	h, err := hsm.Open(hsm.Config{Module: k.hsm.Module, TokenLabel: k.hsm.Token, PIN: k.hsm.PIN, KeyLabel: "coligo-kek"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	pt, err := h.Decrypt(context.Background(), "test", &service.DecryptRequest{Ciphertext: rec.Wrapped, KeyID: rec.KeyID})
	if err != nil || len(pt) != 64 {
		t.Fatalf("unwrap the data key with the HSM: %d bytes, %v", len(pt), err)
	}
	return rec.Wrapped, pt[32:] // SHA-256 of the project binding, then the key
}
