package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
)

func newTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	cmd.AddCommand(newTokenCreate(e), newTokenList(e), newTokenRevoke(e))
	return cmd
}

func newTokenCreate(e *env) *cobra.Command {
	var name, project, role string
	cmd := &cobra.Command{
		Use: "create", Short: "Create a token; its value is shown once", Args: cobra.NoArgs,
		Long: `Create a token. A project token is bound to one project and one role:
reader (get and list, never secret values), writer (+ create, update and delete
secrets, config maps and workloads) or manager (+ delete and restore the
project, manage its tokens). An admin token (--role admin, no --project) may do
everything. The value is printed once; only its hash is stored.`,
		Example: "  coligo token create --project myproject --role reader --name ci",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			in := api.TokenPrototype{Name: name, Role: role}
			if project != "" {
				p, err := findProject(cmd.Context(), c, project)
				if err != nil {
					return err
				}
				in.ProjectID = p.ID
			}
			if in.Name == "" {
				in.Name = role
			}
			t, err := c.CreateToken(cmd.Context(), in)
			if err != nil {
				return err
			}
			return e.print(t, func(w io.Writer) {
				fmt.Fprintf(w, "Created token %s (%s, role %s)\n", t.Name, t.ID, t.Role)
				fmt.Fprintf(w, "Token (shown once): %s\n", t.Token)
			})
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "a name to recognise the token by (default: the role)")
	cmd.Flags().StringVar(&project, "project", "", "project name or id the token is bound to")
	cmd.Flags().StringVar(&role, "role", "", "reader, writer, manager, or admin (without --project)")
	cmd.MarkFlagRequired("role")
	return cmd
}

func newTokenList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List tokens (never their values)", Args: cobra.NoArgs, Example: "  coligo token list",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			l, err := c.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			return e.print(l.Tokens, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tID\tProject\tRole\tAge")
				for _, t := range l.Tokens {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.ID, first(t.ProjectID, "-"), t.Role, age(t.CreatedAt))
				}
			})
		},
	}
}

func newTokenRevoke(e *env) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use: "revoke", Short: "Revoke a token", Args: cobra.NoArgs, Example: "  coligo token revoke --id 6f1c…",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), id); err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.out, "Revoked token %s\n", id)
			return err
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "token id")
	cmd.MarkFlagRequired("id")
	return cmd
}

func newLoginCmd(e *env) *cobra.Command {
	var endpoint, tokenFile, caFile, apikey string
	var insecure bool
	cmd := &cobra.Command{
		Use: "login", Short: "Save the server endpoint and token in ~/.coligo/config.yaml", Args: cobra.NoArgs,
		Example: "  coligo login --endpoint http://127.0.0.1:7070 --token-file /var/lib/coligo/admin.token\n  coligo login --endpoint https://coligo.internal:7443 --ca-file /var/lib/coligo/tls.crt --token-file -",
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := []byte(apikey), error(nil)
			switch {
			case apikey != "":
			case tokenFile == "-":
				b, err = io.ReadAll(io.LimitReader(e.in, 4096))
			default:
				b, err = os.ReadFile(tokenFile)
			}
			if err != nil {
				return fmt.Errorf("read token: %w", err)
			}
			token := strings.TrimSpace(string(b))
			if token == "" {
				return errors.New("the token file is empty")
			}
			if caFile != "" {
				if caFile, err = filepath.Abs(caFile); err != nil {
					return err
				}
			}
			hc, err := e.httpClient(caFile, insecure)
			if err != nil {
				return err
			}
			c := &api.Client{BaseURL: endpoint, Token: token, HTTP: hc}
			if _, err := c.ListProjects(cmd.Context(), api.ListOptions{Limit: 1}, false); err != nil {
				return fmt.Errorf("check token against %s: %w", endpoint, err)
			}
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			if cfg.Endpoint != endpoint || cfg.Token != token {
				cfg.Project, cfg.ProjectName = "", ""
			}
			cfg.Endpoint, cfg.Token, cfg.CAFile, cfg.InsecureSkipTLSVerify = endpoint, token, caFile, insecure
			if err := saveConfig(cfg); err != nil {
				return err
			}
			p, _ := configPath()
			_, err = fmt.Fprintf(e.out, "Logged in to %s; settings saved in %s\n", endpoint, p)
			return err
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "http://127.0.0.1:7070", "server URL")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the token, or - for stdin")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "PEM certificates the server's must chain to, saved with the login (a self-signed server: <data-dir>/tls.crt); default the system's roots")
	cmd.Flags().BoolVar(&insecure, "insecure-skip-tls-verify", false, "do not check the server's certificate (saved with the login; every command then warns)")
	cmd.MarkFlagsMutuallyExclusive("ca-file", "insecure-skip-tls-verify")
	cmd.Flags().StringVar(&apikey, "apikey", "", "the token itself, as Code Engine's CLI takes an API key (it shows in ps: prefer --token-file)")
	cmd.MarkFlagsOneRequired("token-file", "apikey")
	cmd.MarkFlagsMutuallyExclusive("token-file", "apikey")
	return cmd
}
