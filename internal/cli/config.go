package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// fileConfig is ~/.coligo/config.yaml.
type fileConfig struct {
	Endpoint    string `json:"endpoint,omitempty"`
	Token       string `json:"token,omitempty"`
	Project     string `json:"project,omitempty"` // selected project id
	ProjectName string `json:"project_name,omitempty"`
	// CAFile holds the certificates that the server's must chain to (a
	// self-signed server's own); empty: the system's roots.
	CAFile                string `json:"ca_file,omitempty"`
	InsecureSkipTLSVerify bool   `json:"insecure_skip_tls_verify,omitempty"`
}

// configPath is $COLIGO_CONFIG, else ~/.coligo/config.yaml.
func configPath() (string, error) {
	if p := os.Getenv("COLIGO_CONFIG"); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory: %w", err)
	}
	return filepath.Join(home, ".coligo", "config.yaml"), nil
}

func loadConfig() (fileConfig, error) {
	var c fileConfig
	p, err := configPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", p, err)
	}
	return c, nil
}

// saveConfig writes the config file with mode 0600, atomically.
func saveConfig(c fileConfig) error {
	p, err := configPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("create config folder: %w", err)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(p, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}
