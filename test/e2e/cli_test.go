package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestCLILifecycle drives the CLI binary the way the docs show it.
func TestCLILifecycle(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	run := func(stdin string, args ...string) cliResult {
		t.Helper()
		r := s.cli(t, cfg, stdin, nil, args...)
		if r.code != 0 {
			t.Fatalf("coligo %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	tokenFile := filepath.Join(s.dataDir, "admin.token")
	run("", "login", "--endpoint", s.url(), "--token-file", tokenFile)
	assertMode(t, cfg, "-rw-------")

	run("", "project", "create", "--name", "myproject")
	secretValue := randomValue(t)
	envFile := filepath.Join(dir, "app.env")
	os.WriteFile(envFile, []byte("# comment\n\nFROM_ENV=1\nexport QUOTED=\"two words\"\n"), 0o600)
	keyFile := filepath.Join(dir, "cert.pem")
	os.WriteFile(keyFile, []byte("-----BEGIN CERTIFICATE-----\nabc\n"), 0o600)
	run("", "secret", "create", "--name", "generic", "--from-literal", "token="+secretValue, "--from-env-file", envFile, "--from-file", "cert="+keyFile)
	run("registry-password\n", "secret", "create", "--name", "regcred", "--format", "registry", "--server", "registry.example.com:5000", "--username", "robot", "--password-stdin", "--email", "r@example.com")
	run("", "configmap", "create", "--name", "settings", "--from-literal", "LOG_LEVEL=debug", "--from-file", keyFile)

	list := run("", "secret", "list")
	for _, want := range []string{"generic", "regcred", "registry"} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("secret list lacks %q:\n%s", want, list.stdout)
		}
	}
	if strings.Contains(list.stdout, secretValue) {
		t.Errorf("secret list shows a value")
	}
	masked := run("", "secret", "get", "--name", "generic")
	if strings.Contains(masked.stdout, secretValue) || !strings.Contains(masked.stdout, "REDACTED") {
		t.Errorf("secret get without --show-values:\n%s", masked.stdout)
	}
	shown := run("", "secret", "get", "--name", "generic", "--show-values", "-o", "json")
	var sec struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(shown.stdout), &sec); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"token": secretValue, "FROM_ENV": "1", "QUOTED": "two words", "cert": "-----BEGIN CERTIFICATE-----\nabc\n"}
	for k, v := range want {
		if sec.Data[k] != v {
			t.Errorf("secret key %s = %q, want %q", k, sec.Data[k], v)
		}
	}
	reg := run("", "secret", "get", "--name", "regcred", "--show-values", "-o", "yaml")
	var regSec struct {
		Format string            `json:"format"`
		Data   map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(reg.stdout), &regSec); err != nil || regSec.Format != "registry" || regSec.Data["password"] != "registry-password" || regSec.Data["server"] != "registry.example.com:5000" {
		t.Errorf("registry secret: %+v %v", regSec, err)
	}
	run("", "secret", "update", "--name", "generic", "--from-literal", "extra=x", "--rm", "cert")
	shown = run("", "secret", "get", "--name", "generic", "--show-values", "-o", "json")
	sec.Data = nil
	json.Unmarshal([]byte(shown.stdout), &sec)
	if sec.Data["extra"] != "x" || sec.Data["token"] != secretValue || sec.Data["cert"] != "" {
		t.Errorf("after update: %v", sec.Data)
	}
	cm := run("", "configmap", "get", "--name", "settings", "-o", "json")
	if !strings.Contains(cm.stdout, `"cert.pem"`) || !strings.Contains(cm.stdout, `"LOG_LEVEL": "debug"`) {
		t.Errorf("config map: %s", cm.stdout)
	}
	run("", "configmap", "update", "--name", "settings", "--from-literal", "LOG_LEVEL=info")
	if out := run("", "configmap", "list").stdout; !strings.Contains(out, "settings") {
		t.Errorf("configmap list: %s", out)
	}

	// Tokens.
	created := run("", "token", "create", "--project", "myproject", "--role", "reader", "--name", "ci", "-o", "json")
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(created.stdout), &tok)
	if !strings.HasPrefix(tok.Token, "coligo_") {
		t.Fatalf("token create: %s", created.stdout)
	}
	tl := run("", "token", "list")
	if !strings.Contains(tl.stdout, tok.ID) || strings.Contains(tl.stdout, tok.Token) {
		t.Errorf("token list:\n%s", tl.stdout)
	}
	// The reader token through COLIGO_TOKEN: may read, may not write.
	asReader := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + tok.Token}, "secret", "get", "--name", "generic", "--show-values")
	if asReader.code != 0 || strings.Contains(asReader.stdout, secretValue) {
		t.Errorf("reader get: %d %s %s", asReader.code, asReader.stdout, asReader.stderr)
	}
	denied := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + tok.Token}, "secret", "delete", "--name", "generic", "-f")
	if denied.code == 0 || !strings.Contains(denied.stderr, "forbidden") {
		t.Errorf("reader delete: exit %d, stderr %q", denied.code, denied.stderr)
	}
	run("", "token", "revoke", "--id", tok.ID)

	// Errors print the API's message and exit non-zero.
	bad := s.cli(t, cfg, "", nil, "secret", "create", "--name", "Bad_Name", "--from-literal", "a=b")
	if bad.code == 0 || !strings.Contains(bad.stderr, "invalid name") {
		t.Errorf("bad name: exit %d, stderr %q", bad.code, bad.stderr)
	}
	dup := s.cli(t, cfg, "", nil, "secret", "create", "--name", "generic")
	if dup.code == 0 || !strings.Contains(dup.stderr, "already exists") {
		t.Errorf("duplicate: exit %d, stderr %q", dup.code, dup.stderr)
	}

	run("", "secret", "delete", "--name", "regcred", "--force")
	run("", "configmap", "delete", "--name", "settings", "-f")
	run("", "secret", "delete", "--name", "regcred", "-f", "--ignore-not-found")

	// Code Engine's documented example, exactly (stdin is not a terminal: no prompt).
	del := run("", "project", "delete", "--name", "myproject")
	if del.stdout != "Deleted project myproject\n" {
		t.Errorf("project delete printed %q", del.stdout)
	}
	if out := run("", "project", "list", "--all").stdout; !strings.Contains(out, "soft_deleted") {
		t.Errorf("project list --all:\n%s", out)
	}
	if out := run("", "project", "restore", "--name", "myproject").stdout; out != "Restored project myproject\n" {
		t.Errorf("restore printed %q", out)
	}
	run("", "project", "select", "--name", "myproject")
	if out := run("", "project", "get", "--name", "myproject").stdout; !strings.Contains(out, "active") {
		t.Errorf("project get:\n%s", out)
	}
	if out := run("", "project", "delete", "--name", "myproject", "--hard", "-f").stdout; out != "Deleted project myproject\n" {
		t.Errorf("hard delete printed %q", out)
	}
	if out := run("", "project", "list", "--all").stdout; strings.Contains(out, "myproject") {
		t.Errorf("hard-deleted project still listed:\n%s", out)
	}
	// Help and completion are there.
	if out := run("", "secret", "create", "--help").stdout; !strings.Contains(out, "Examples:") {
		t.Errorf("secret create --help has no examples")
	}
	if out := run("", "completion", "bash").stdout; !strings.Contains(out, "bash completion") {
		t.Errorf("no bash completion")
	}
}
