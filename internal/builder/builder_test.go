package builder

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bk "github.com/moby/buildkit/client"
	"golang.org/x/crypto/ssh"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/itest"
)

func TestWithin(t *testing.T) {
	for _, tt := range []struct {
		rel, want string
		bad       bool
	}{
		{"", "/src", false}, {".", "/src", false}, {"app", "/src/app", false}, {"/app/web/", "/src/app/web", false},
		{"../etc", "", true}, {"app/../../etc", "", true}, {"a/..", "", true},
	} {
		got, err := within("/src", tt.rel)
		if tt.bad != (err != nil) || !tt.bad && got != tt.want {
			t.Errorf("within(/src, %q) = %q, %v", tt.rel, got, err)
		}
	}
}

func TestParseCommit(t *testing.T) {
	for _, tt := range []struct {
		obj    string
		author string
		time   time.Time
	}{
		{"tree 4b82\nparent 9a3d\nauthor Ada Lovelace <ada@example.org> 1700000000 +0100\ncommitter Grace <g@example.org> 1700000600 -0500\n\nfirst\n",
			"Ada Lovelace", time.Unix(1700000600, 0).UTC()},
		{"tree 4b82\nauthor NoMail 1700000000 +0000\n\nmsg", "", time.Time{}},
		{"", "", time.Time{}},
		{"author A <a> notanumber +0000\ncommitter B <b> x +0000\n\n", "A", time.Time{}},
		{"tree x\n\nauthor In The Message <m> 1 +0000\n", "", time.Time{}},
	} {
		c := parseCommit([]byte(tt.obj))
		if c.Author != tt.author || !c.Time.Equal(tt.time) {
			t.Errorf("parseCommit(%q) = %+v, want %q at %s", tt.obj, c, tt.author, tt.time)
		}
	}
}

func FuzzParseCommit(f *testing.F) {
	f.Add([]byte("tree 4b82\nauthor Ada <ada@example.org> 1700000000 +0100\ncommitter Ada <ada@example.org> 1700000600 -0500\n\nfirst\n"))
	f.Add([]byte("author  <> \ncommitter <> 99999999999999999999 +0000\n\n"))
	f.Fuzz(func(t *testing.T, obj []byte) {
		parseCommit(obj)
	})
}

// files writes files (path → content) under a new directory.
func files(t *testing.T, fs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, body := range fs {
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBuild builds with the test buildkitd: a Dockerfile from a local
// directory and from a Git repository served over plain HTTP on loopback,
// based on an image of the private test registry, with a build argument
// and a build secret, pushed there; the secret is in no layer and in no
// line of the image's history.
func TestBuild(t *testing.T) {
	addr, _ := itest.NeedBuildKit(t)
	parts := itest.Need(t)
	base := parts.BusyboxImage(t)
	b := &Builder{Address: addr, Insecure: []string{parts.Registry}}
	ctx := context.Background()
	const secret = "s3cret-of-the-build-7d1e"
	dockerfile := "FROM " + base + "\nARG GREETING=none\nCOPY hello.txt /hello.txt\n" +
		"RUN --mount=type=secret,id=token sh -c 'wc -c < /run/secrets/token > /secret-length && echo \"$GREETING\" > /greeting'\n" +
		"CMD [\"cat\", \"/hello.txt\"]\n"
	src := map[string]string{"app/Dockerfile.web": dockerfile, "app/hello.txt": "hello from the build\n", "README": "not in the context"}

	check := func(t *testing.T, out string, res Result, progress string) {
		t.Helper()
		img := parts.ImageFiles(t, out)
		fs := img.Files
		if img.Digest != res.Digest {
			t.Errorf("digest %s, the registry has %s", res.Digest, img.Digest)
		}
		if string(fs["greeting"]) != "hi\n" || string(fs["hello.txt"]) != "hello from the build\n" || strings.TrimSpace(string(fs["secret-length"])) != strconv.Itoa(len(secret)) {
			t.Errorf("greeting %q, hello.txt %q, the secret's length as RUN saw it %q", fs["greeting"], fs["hello.txt"], fs["secret-length"])
		}
		for p, body := range fs {
			if bytes.Contains(body, []byte(secret)) {
				t.Errorf("the build secret is in the image's %s", p)
			}
		}
		cfg := img.Config
		if bytes.Contains(cfg, []byte(secret)) || !bytes.Contains(cfg, []byte("GREETING")) {
			t.Errorf("the image's config (history) holds the secret, or lacks the build argument: %s", cfg)
		}
		if !strings.Contains(progress, "RUN --mount=type=secret") || strings.Contains(progress, secret) {
			t.Errorf("progress:\n%s", progress)
		}
	}
	req := Request{ContextDir: "app", Dockerfile: "Dockerfile.web", BuildArgs: map[string]string{"GREETING": "hi"},
		Secrets: map[string][]byte{"token": []byte(secret)}, Auth: parts.Auth()}

	t.Run("local", func(t *testing.T) {
		var progress bytes.Buffer
		r := req
		r.Dir, r.Output, r.Progress = files(t, src), parts.Registry+"/coligo-test/built:local", &progress
		res, err := b.Build(ctx, r)
		if err != nil {
			t.Fatalf("%v\n%s", err, progress.String())
		}
		check(t, r.Output, res, progress.String())
	})

	t.Run("memory", func(t *testing.T) {
		var progress bytes.Buffer
		r := req
		r.Files = map[string][]byte{}
		for p, body := range src {
			r.Files[p] = []byte(body)
		}
		r.Output, r.Progress = parts.Registry+"/coligo-test/built:memory", &progress
		res, err := b.Build(ctx, r)
		if err != nil {
			t.Fatalf("%v\n%s", err, progress.String())
		}
		check(t, r.Output, res, progress.String())
	})

	t.Run("git", func(t *testing.T) {
		var progress bytes.Buffer
		r := req
		r.GitURL, r.GitRevision, r.Output, r.Progress = itest.GitRepo(t, src), "main", parts.Registry+"/coligo-test/built:git", &progress
		res, err := b.Build(ctx, r)
		if err != nil {
			t.Fatalf("%v\n%s", err, progress.String())
		}
		check(t, r.Output, res, progress.String())
		if g := res.Git; g == nil || len(g.SHA) != 40 || g.Author != "Ada" || g.Branch != "main" || time.Since(g.Time) > time.Hour {
			t.Errorf("the commit built: %+v", g)
		}
	})

	// A private repository, over HTTP with basic auth and over SSH with a
	// key (the host's key given, or taken as the host shows it); without
	// its credentials, or with wrong ones, nothing is built.
	t.Run("private", func(t *testing.T) {
		g := itest.PrivateGitRepo(t, src)
		_, otherKey, _ := ed25519.GenerateKey(nil)
		block, _ := ssh.MarshalPrivateKey(otherKey, "")
		other := pem.EncodeToMemory(block)
		_, otherHost, _ := ed25519.GenerateKey(nil)
		otherSigner, _ := ssh.NewSignerFromKey(otherHost)
		wrongHosts := strings.Fields(g.KnownHosts)[0] + " " + string(ssh.MarshalAuthorizedKey(otherSigner.PublicKey()))
		for _, tt := range []struct {
			name string
			url  string
			auth *GitAuth
			ok   bool
		}{
			{"basic auth", g.HTTPURL, &GitAuth{Username: g.User, Password: g.Password}, true},
			{"ssh, host key given", g.SSHURL, &GitAuth{SSHKey: []byte(g.SSHKey), KnownHosts: g.KnownHosts}, true},
			{"ssh, host key as shown", g.SSHURL, &GitAuth{SSHKey: []byte(g.SSHKey)}, true},
			{"http without credentials", g.HTTPURL, nil, false},
			{"a wrong password", g.HTTPURL, &GitAuth{Username: g.User, Password: "wrong"}, false},
			{"another key", g.SSHURL, &GitAuth{SSHKey: other, KnownHosts: g.KnownHosts}, false},
			{"another host key", g.SSHURL, &GitAuth{SSHKey: []byte(g.SSHKey), KnownHosts: wrongHosts}, false},
			{"not a key", g.SSHURL, &GitAuth{SSHKey: []byte("not a key")}, false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var progress bytes.Buffer
				r := req
				r.GitURL, r.GitRevision, r.GitAuth, r.Progress = tt.url, "main", tt.auth, &progress
				r.Output = parts.Registry + "/coligo-test/built:private"
				res, err := b.Build(ctx, r)
				if tt.ok && err != nil {
					t.Fatalf("%v\n%s", err, progress.String())
				}
				if !tt.ok && err == nil {
					t.Fatalf("built")
				}
				for _, s := range []string{g.Password, g.SSHKey, base64.StdEncoding.EncodeToString([]byte(g.User + ":" + g.Password))} {
					if err != nil && strings.Contains(err.Error(), s) || strings.Contains(progress.String(), s) {
						t.Errorf("the error or the progress shows a credential: %v\n%s", err, progress.String())
					}
				}
				if tt.ok {
					check(t, r.Output, res, progress.String())
				}
			})
		}
	})

	// Two builds of one Dockerfile whose RUN step reads a secret: the
	// second is not served from the first's cache (its cache key leaves the
	// secret out, so a cached layer would hand one project's data to
	// another), and nothing of the first stays in buildkitd after it.
	t.Run("isolated", func(t *testing.T) {
		df := "FROM " + base + "\nRUN --mount=type=secret,id=token sh -c 'sha256sum /run/secrets/token | cut -c1-64 > /sum'\n"
		sums := map[string]string{}
		for _, who := range []string{"first-tenant-value", "second-tenant-value"} {
			var progress bytes.Buffer
			r := Request{Files: map[string][]byte{"Dockerfile": []byte(df)}, Secrets: map[string][]byte{"token": []byte(who)},
				Output: parts.Registry + "/coligo-test/isolated:" + who, Auth: parts.Auth(), Progress: &progress}
			if _, err := b.Build(ctx, r); err != nil {
				t.Fatalf("%v\n%s", err, progress.String())
			}
			if strings.Contains(progress.String(), "CACHED") {
				t.Errorf("a step came from the cache:\n%s", progress.String())
			}
			sums[who] = strings.TrimSpace(string(parts.ImageFiles(t, r.Output).Files["sum"]))
		}
		if sums["first-tenant-value"] == sums["second-tenant-value"] || len(sums["second-tenant-value"]) != 64 {
			t.Errorf("the second build's RUN step saw the first's secret: %v", sums)
		}
		c, err := bk.New(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Other packages' tests may build meanwhile: what ends with them
		// goes as soon as they end.
		var kept []string
		for range 50 {
			left, err := c.DiskUsage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			kept = kept[:0]
			for _, u := range left {
				if !u.InUse {
					kept = append(kept, fmt.Sprintf("%s (%s, %d bytes)", u.ID, u.Description, u.Size))
				}
			}
			if len(kept) == 0 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(kept) > 0 {
			t.Errorf("buildkitd keeps after the builds: %v", kept)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for what, r := range map[string]Request{
			"wrong push credentials": {Dir: files(t, src), ContextDir: "app", Dockerfile: "Dockerfile.web", Secrets: req.Secrets,
				Output: parts.Registry + "/coligo-test/built:refused", Auth: &engine.RegistryAuth{Server: parts.Registry, Username: parts.User, Password: "wrong"}},
			"no Dockerfile":               {Dir: files(t, src), Output: parts.Registry + "/coligo-test/built:refused", Auth: parts.Auth()},
			"a context out of the source": {Dir: files(t, src), ContextDir: "../..", Output: parts.Registry + "/coligo-test/built:refused", Auth: parts.Auth()},
		} {
			if _, err := b.Build(ctx, r); err == nil {
				t.Errorf("%s: built", what)
			} else if strings.Contains(err.Error(), "wrong") && what == "wrong push credentials" {
				t.Errorf("%s: the error shows the password: %v", what, err)
			}
		}
	})
}

// TestBuildLimits: with a CgroupParent, a build's steps run in a cgroup of
// the build's own, under it, with its memory: a step that takes more is
// killed and the build fails, the same step within a larger size builds;
// nothing of the cgroups stays.
func TestBuildLimits(t *testing.T) {
	addr, _ := itest.NeedBuildKit(t)
	parts := itest.Need(t)
	base := parts.BusyboxImage(t)
	b := &Builder{Address: addr, Insecure: []string{parts.Registry}, CgroupParent: "coligo-test-builds"}
	df := "FROM " + base + "\nRUN cat /proc/self/cgroup > /cgroup && /bin/testprog alloc 2100\n"
	build := func(memory int64) (map[string][]byte, string, error) {
		var progress bytes.Buffer
		out := parts.Registry + "/coligo-test/limited:" + strconv.FormatInt(memory, 10)
		_, err := b.Build(context.Background(), Request{Files: map[string][]byte{"Dockerfile": []byte(df)}, Output: out, Auth: parts.Auth(),
			MilliCPU: 500, MemoryBytes: memory, Progress: &progress})
		if err != nil {
			return nil, progress.String(), err
		}
		return parts.ImageFiles(t, out).Files, progress.String(), nil
	}
	if _, progress, err := build(2e9); err == nil {
		t.Errorf("a step over the build's memory built:\n%s", progress)
	}
	fs, progress, err := build(4e9)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress)
	}
	if !strings.Contains(string(fs["cgroup"]), "/coligo-test-builds/build-") {
		t.Errorf("the step's cgroups:\n%s", fs["cgroup"])
	}
	left, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "coligo-test-builds", "build-*"))
	more, _ := filepath.Glob(filepath.Join(cgroupRoot, "coligo-test-builds", "build-*"))
	if len(left)+len(more) > 0 {
		t.Errorf("the builds' cgroups stay: %v %v", left, more)
	}
}
