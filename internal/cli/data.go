package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// dataFlags are the --from-* flags shared by secrets and config maps.
type dataFlags struct {
	literals []string
	envFiles []string
	files    []string
}

func (d *dataFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVarP(&d.literals, "from-literal", "l", nil, "KEY=VALUE pair (repeatable)")
	f.StringArrayVarP(&d.envFiles, "from-env-file", "e", nil, "file of KEY=VALUE lines; blank lines and # comments are skipped (repeatable)")
	f.StringArrayVarP(&d.files, "from-file", "f", nil, "[KEY=]PATH: the file's content under KEY, or its base name (repeatable)")
}

// collect merges the flags into one map; later flags win.
func (d *dataFlags) collect() (map[string]string, error) {
	out := map[string]string{}
	for _, p := range d.envFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("--from-env-file: %w", err)
		}
		kv, err := ParseEnvFile(b)
		if err != nil {
			return nil, fmt.Errorf("--from-env-file %s: %w", p, err)
		}
		for k, v := range kv {
			out[k] = v
		}
	}
	for _, f := range d.files {
		key, path, ok := strings.Cut(f, "=")
		if !ok {
			key, path = filepath.Base(f), f
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--from-file: %w", err)
		}
		out[key] = string(b)
	}
	for _, l := range d.literals {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--from-literal wants KEY=VALUE, got an argument without '=' or key")
		}
		out[k] = v
	}
	return out, nil
}

// ParseEnvFile reads KEY=VALUE lines. Blank lines and lines starting with #
// are skipped; an optional "export " prefix is dropped; a value in matching
// single or double quotes is unquoted. Errors name the line, not its value.
func ParseEnvFile(b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return out, nil
}
