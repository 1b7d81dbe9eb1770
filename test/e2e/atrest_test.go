package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestNoSecretValueAtRest runs a job that takes secret and config map values
// through environment variables, an app that also mounts them, and a
// function that takes one in its environment and holds a marker in its
// code, then scans
// every file at rest that coligo or containerd wrote — the data dir (with
// the instances' logs), containerd's root and state dirs and the server's
// logs — for each value and the function's marker, raw, base64 and hex:
// no hit. The scan first proves
// that it finds values planted on purpose, in a log and in containerd's
// root, in each encoding. (Values once went into the OCI spec, so into
// containerd's meta.db and every bundle's config.json.)
func TestNoSecretValueAtRest(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "atrest")
	password, apiKey, setting, planted := randomValue(t), randomValue(t), randomValue(t), randomValue(t)
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "db", Format: "generic", Data: map[string]string{"PASSWORD": password, "API_KEY": apiKey}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateConfigMap(ctx, p.ID, api.ConfigMapPrototype{Name: "settings", Data: map[string]string{"SETTING": setting, "PLANTED": planted}}); err != nil {
		t.Fatal(err)
	}
	env := []api.EnvVar{
		{Type: "secret_full_reference", Reference: "db"},
		{Type: "config_map_key_reference", Reference: "settings", Key: "SETTING"},
		{Type: "config_map_key_reference", Reference: "settings", Key: "PLANTED"},
	}
	mounts := []api.VolumeMount{{Type: "secret", Reference: "db", MountPath: "/run/db"}, {Type: "config_map", Reference: "settings", MountPath: "/run/settings"}}
	// The job checks every value by its hash (the command is in the spec,
	// so it may not hold a value) and prints the planted one to its log.
	check := fmt.Sprintf(`h() { printf %%s "$1" | sha256sum | cut -c1-64; }
[ "$(h "$PASSWORD")" = %s ] && [ "$(h "$API_KEY")" = %s ] && [ "$(h "$SETTING")" = %s ] &&
true || { echo values differ; exit 3; }
echo "planted $PLANTED"`, sum(password), sum(apiKey), sum(setting))
	run, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "checker", RunSpec: api.RunSpec{ImageReference: image, ImageSecret: "regcred",
		RunCommands: []string{"sh", "-c", check}, RunEnvVariables: env}})
	if err != nil {
		t.Fatal(err)
	}
	if r := waitRun(t, c, p.ID, run.Name, 60*time.Second, finished); r.Status != "completed" {
		var logs strings.Builder
		c.JobRunLogs(ctx, p.ID, run.Name, 0, api.LogOptions{}, &logs)
		t.Fatalf("the job did not see its values: %s %+v\n%s", r.Status, r.StatusDetails, logs.String())
	}
	proto := testApp("reader", image)
	proto.RunEnvVariables, proto.RunVolumeMounts = append(proto.RunEnvVariables, env...), mounts
	a := deployApp(t, c, p.ID, proto)
	if got := mustCall(t, s, a, "/env"); !strings.Contains(got, "PASSWORD="+password) || !strings.Contains(got, "SETTING="+setting) {
		t.Fatalf("the app's environment lacks its values")
	}
	if got := mustCall(t, s, a, "/file?path=/run/db/API_KEY"); got != apiKey {
		t.Fatalf("the app's mounted secret holds something else")
	}

	// A function: its code (project data) holds a marker, and its
	// environment takes the secret; it answers with the secret's hash.
	codeMarker := randomValue(t)
	rts, err := c.ListFunctionRuntimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var node string
	for _, r := range rts.FunctionRuntimes {
		if r.Family == "nodejs" && r.Default {
			node = r.ID
		}
	}
	fnCode := fmt.Sprintf("const crypto = require('crypto');\nconst marker = %q;\n"+
		"function main() { return {body: crypto.createHash('sha256').update(process.env.PASSWORD).digest('hex') + ' ' + marker.length} }\n"+
		"module.exports.main = main;\n", codeMarker)
	if _, err := c.CreateFunction(ctx, p.ID, api.FunctionPrototype{Name: "sealed", FunctionSpec: api.FunctionSpec{Runtime: node,
		CodeReference: inlineCode(fnCode), ScaleCPULimit: "0.25", ScaleMemoryLimit: "1G",
		RunEnvVariables: []api.EnvVar{{Type: "secret_key_reference", Name: "PASSWORD", Reference: "db", Key: "PASSWORD"}}}}); err != nil {
		t.Fatal(err)
	}
	fn := waitFunction(t, c, p.ID, "sealed", 180*time.Second, func(f *api.Function) bool { return f.Status == "ready" })
	if code, _, body := invoke(t, s, fn, "GET", "/", "", ""); code != 200 || body != sum(password)+" "+fmt.Sprint(len(codeMarker)) {
		t.Fatalf("the function did not see its secret: %d %q", code, body)
	}

	containerd := filepath.Dir(os.Getenv("COLIGO_TEST_CONTAINERD"))
	dirs := []string{filepath.Dir(s.dataDir), filepath.Join(containerd, "root"), filepath.Join(containerd, "state")}
	// The scan finds what is there: the planted value in the job's log,
	// and a file planted in containerd's root in every encoding.
	if hits := scanDir(t, dirs[0], []byte("planted "+planted)); len(hits) == 0 {
		t.Fatalf("the scan does not find the value the job printed to its log")
	}
	plantFile := filepath.Join(dirs[1], "coligo-test-planted")
	var plantBody []byte
	for _, e := range atRestEncodings(planted) {
		plantBody = append(append(plantBody, e...), '\n')
	}
	os.WriteFile(plantFile, plantBody, 0o600)
	for _, e := range atRestEncodings(planted) {
		if hits := scanDir(t, dirs[1], e); len(hits) != 1 {
			t.Fatalf("the scan finds the planted %q %d times, want once", e, len(hits))
		}
	}
	os.Remove(plantFile)

	for name, v := range map[string]string{"secret PASSWORD": password, "secret API_KEY": apiKey, "config map SETTING": setting, "function code": codeMarker} {
		for _, dir := range dirs {
			if hits := scanDir(t, dir, atRestEncodings(v)...); len(hits) > 0 {
				t.Errorf("the value of %s is at rest in %v", name, hits)
			}
		}
	}
}

// atRestEncodings are the forms in which a value may lie in a file.
func atRestEncodings(v string) [][]byte {
	return [][]byte{[]byte(v), []byte(base64.StdEncoding.EncodeToString([]byte(v))), []byte(base64.RawURLEncoding.EncodeToString([]byte(v))), []byte(hex.EncodeToString([]byte(v)))}
}

// sum is v's SHA-256 in hex, as sha256sum prints it.
func sum(v string) string { h := sha256.Sum256([]byte(v)); return hex.EncodeToString(h[:]) }
