package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coligo/coligo/api"
)

// TestNoSecretInLogsOrErrors runs secret values and tokens through good and
// bad calls and checks that no log line, error message or list shows them.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "leak")
	values := []string{randomValue(t), randomValue(t), randomValue(t)}
	var errs []string
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	_, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "s", Format: "registry", Data: map[string]string{"server": "r", "username": "u", "password": values[0]}})
	collect(err)
	// Bad calls that carry a value: a bad key next to it, a wrong format, a duplicate.
	_, err = c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "t", Format: "generic", Data: map[string]string{"bad key": values[1]}})
	collect(err)
	_, err = c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "s", Format: "generic", Data: map[string]string{"k": values[1]}})
	collect(err)
	_, err = c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "u", Format: "basic_auth", Data: map[string]string{"password": values[2]}})
	collect(err)
	_, err = c.ReplaceSecret(ctx, p.ID, "s", "1", api.SecretReplace{Format: "registry", Data: map[string]string{"server": "r", "username": "u", "password": values[2]}})
	collect(err)
	_, err = c.GetSecret(ctx, p.ID, "s")
	collect(err)
	tok, err := c.CreateToken(ctx, api.TokenPrototype{Name: "w", ProjectID: p.ID, Role: "writer"})
	collect(err)
	_, err = s.client(tok.Token).GetSecret(ctx, p.ID, "s")
	collect(err)
	_, err = s.client(tok.Token+"x").GetSecret(ctx, p.ID, "s")
	collect(err)
	if len(errs) < 5 {
		t.Fatalf("expected the bad calls to fail, got %d errors", len(errs))
	}
	// A console login, its session at work, and a failed login: neither the
	// tokens, the session cookie nor its CSRF token reach a log or an answer.
	cookie := loginCookie(t, s, tok.Token)
	sess := sessionOf(t, s, cookie)
	s.send(t, attack{method: "GET", path: "/v2/projects/" + p.ID + "/secrets/s", header: map[string]string{"Cookie": cookie}})
	if code, body := s.send(t, attack{method: "POST", path: "/console/session", body: `{"token":"` + tok.Token + `x"}`}); code != 401 {
		t.Errorf("a login with a wrong token: %d", code)
	} else {
		errs = append(errs, body)
	}
	list, _ := c.ListSecrets(ctx, p.ID, api.ListOptions{}, "")
	tokens, _ := c.ListTokens(ctx)
	s.stop()

	rootKey, err := os.ReadFile(filepath.Join(s.dataDir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := append(values, s.admin, tok.Token, strings.TrimPrefix(cookie, "coligo_session="), sess.CSRFToken, hex.EncodeToString(rootKey), base64.StdEncoding.EncodeToString(rootKey), base64.RawURLEncoding.EncodeToString(rootKey))
	haystacks := map[string]string{"server log": s.allLogs(), "errors": strings.Join(errs, "\n"), "secret list": mustJSON(list), "token list": mustJSON(tokens)}
	for where, text := range haystacks {
		for i, v := range secrets {
			if strings.Contains(text, v) {
				t.Errorf("%s contains secret #%d", where, i)
			}
		}
	}
	if !strings.Contains(s.allLogs(), "secret values read") {
		t.Errorf("the log does not record who read secret values")
	}
	if hits := scanDir(t, s.dataDir, []byte(tok.Token)); len(hits) > 0 {
		t.Errorf("a token value is stored in %v", hits)
	}
}
