package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
)

// cliFormats maps the CLI's --format values to the API's.
var cliFormats = map[string]string{
	"generic": "generic", "registry": "registry", "basic_auth": "basic_auth", "basic": "basic_auth",
	"ssh": "ssh_auth", "ssh_auth": "ssh_auth", "tls": "tls", "hmac": "hmac_auth", "hmac_auth": "hmac_auth",
}

func newSecretCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("secret", nil, "Manage secrets of the selected project")
	cmd.AddCommand(newSecretCreate(e), newSecretUpdate(e), newSecretGet(e), newSecretList(e), newSecretDelete(e))
	return cmd
}

// secretFlags are the data flags of secret create and update.
type secretFlags struct {
	dataFlags
	format                        string
	server, username, password    string
	passwordStdin                 bool
	email                         string
	keyPath, knownHostsPath       string
	certChainFile, privateKeyFile string
	accessKeyID, secretAccessKey  string
}

func (s *secretFlags) add(cmd *cobra.Command) {
	s.dataFlags.add(cmd)
	f := cmd.Flags()
	f.StringVar(&s.server, "server", "", "registry: registry server, e.g. registry.example.com:5000")
	f.StringVarP(&s.username, "username", "u", "", "registry, basic_auth: user name")
	f.StringVar(&s.password, "password", "", "registry, basic_auth: password (prefer --password-stdin)")
	f.BoolVar(&s.passwordStdin, "password-stdin", false, "registry, basic_auth: read the password from stdin")
	f.StringVar(&s.email, "email", "", "registry: e-mail address")
	f.StringVar(&s.keyPath, "key-path", "", "ssh: file of the unencrypted private key")
	f.StringVar(&s.knownHostsPath, "known-hosts-path", "", "ssh: known_hosts file")
	f.StringVar(&s.certChainFile, "cert-chain-file", "", "tls: certificate chain file")
	f.StringVar(&s.privateKeyFile, "private-key-file", "", "tls: private key file")
	f.StringVar(&s.accessKeyID, "access-key-id", "", "hmac: access key id")
	f.StringVar(&s.secretAccessKey, "secret-access-key", "", "hmac: secret access key")
}

// collect builds the data of a secret from the flags.
func (s *secretFlags) collect(in io.Reader) (map[string]string, error) {
	data, err := s.dataFlags.collect()
	if err != nil {
		return nil, err
	}
	if s.passwordStdin {
		b, err := io.ReadAll(io.LimitReader(in, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("read password from stdin: %w", err)
		}
		s.password = strings.TrimRight(string(b), "\r\n")
	}
	set := func(k, v string) {
		if v != "" {
			data[k] = v
		}
	}
	readFile := func(k, path string) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		data[k] = string(b)
		return nil
	}
	set("server", s.server)
	set("username", s.username)
	set("password", s.password)
	set("email", s.email)
	set("access_key_id", s.accessKeyID)
	set("secret_access_key", s.secretAccessKey)
	for k, p := range map[string]string{"ssh_key": s.keyPath, "known_hosts": s.knownHostsPath, "tls_cert": s.certChainFile, "tls_key": s.privateKeyFile} {
		if err := readFile(k, p); err != nil {
			return nil, err
		}
	}
	return data, nil
}

func apiFormat(f string) (string, error) {
	if v, ok := cliFormats[f]; ok {
		return v, nil
	}
	return "", fmt.Errorf("--format %q is not one of generic, registry, basic_auth, ssh, tls, hmac", f)
}

func newSecretCreate(e *env) *cobra.Command {
	var name string
	var sf secretFlags
	cmd := &cobra.Command{
		Use: "create", Short: "Create a secret", Args: cobra.NoArgs,
		Example: `  coligo secret create --name db --from-literal user=app --from-literal password=s3cret
  coligo secret create --name regcred --format registry --server registry.example.com --username bot --password-stdin < pw.txt
  coligo secret create --name certs --format tls --cert-chain-file tls.crt --private-key-file tls.key`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := apiFormat(sf.format)
			if err != nil {
				return err
			}
			data, err := sf.collect(e.in)
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			project, err := e.currentProject(cmd.Context(), c)
			if err != nil {
				return err
			}
			s, err := c.CreateSecret(cmd.Context(), project, api.SecretPrototype{Name: name, Format: format, Data: data})
			if err != nil {
				return err
			}
			return e.printSecret(s, false, fmt.Sprintf("Created secret %s", s.Name))
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "secret name")
	cmd.Flags().StringVar(&sf.format, "format", "generic", "generic, registry, basic_auth, ssh, tls or hmac")
	sf.add(cmd)
	cmd.MarkFlagRequired("name")
	return cmd
}

func newSecretUpdate(e *env) *cobra.Command {
	var name string
	var rm []string
	var sf secretFlags
	cmd := &cobra.Command{
		Use: "update", Short: "Add, change or remove keys of a secret", Args: cobra.NoArgs,
		Example: "  coligo secret update --name db --from-literal password=n3w --rm old_key",
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := sf.collect(e.in)
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			project, err := e.currentProject(cmd.Context(), c)
			if err != nil {
				return err
			}
			cur, err := c.GetSecret(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			if len(cur.Data) > 0 && allRedacted(cur.Data) {
				return errors.New("this token may not read secret values, so it cannot update them")
			}
			merged := cur.Data
			if merged == nil {
				merged = map[string]string{}
			}
			for k, v := range data {
				merged[k] = v
			}
			for _, k := range rm {
				delete(merged, k)
			}
			s, err := c.ReplaceSecret(cmd.Context(), project, name, cur.EntityTag, api.SecretReplace{Format: cur.Format, Data: merged})
			if err != nil {
				return err
			}
			return e.printSecret(s, false, fmt.Sprintf("Updated secret %s", s.Name))
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "secret name")
	cmd.Flags().StringArrayVar(&rm, "rm", nil, "key to remove (repeatable)")
	sf.add(cmd)
	cmd.MarkFlagRequired("name")
	return cmd
}

func allRedacted(m map[string]string) bool {
	for _, v := range m {
		if v != "REDACTED" {
			return false
		}
	}
	return true
}

// printSecret prints a secret; values are masked unless show is set.
func (e *env) printSecret(s *api.Secret, show bool, headline string) error {
	if !show {
		masked := *s
		masked.Data = map[string]string{}
		for k := range s.Data {
			masked.Data[k] = "REDACTED"
		}
		s = &masked
	}
	return e.printOne(s, headline, func(w io.Writer) {
		fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nFormat:\t%s\nCreated:\t%s\nEntity Tag:\t%s\nData:\t\n", s.Name, s.ID, s.Format, s.CreatedAt, s.EntityTag)
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s:\t%s\n", k, s.Data[k])
		}
	})
}

func newSecretGet(e *env) *cobra.Command {
	var name string
	var show bool
	cmd := &cobra.Command{
		Use: "get", Short: "Show a secret (values masked unless --show-values)", Args: cobra.NoArgs,
		Example: "  coligo secret get --name db\n  coligo secret get --name db --show-values -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			project, err := e.currentProject(cmd.Context(), c)
			if err != nil {
				return err
			}
			get := c.GetSecretKeys
			if show {
				get = c.GetSecret
			}
			s, err := get(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.printSecret(s, show, "")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "secret name")
	cmd.Flags().BoolVar(&show, "show-values", false, "show the values (a reader token sees REDACTED)")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newSecretList(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "list", Short: "List secrets", Args: cobra.NoArgs,
		Example: "  coligo secret list\n  coligo secret list --format registry",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			project, err := e.currentProject(cmd.Context(), c)
			if err != nil {
				return err
			}
			if format != "" {
				if format, err = apiFormat(format); err != nil {
					return err
				}
			}
			all, err := c.AllSecrets(cmd.Context(), project, format)
			if err != nil {
				return err
			}
			return e.print(all, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tFormat\tData\tAge")
				for _, s := range all {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", s.Name, s.Format, len(s.Data), age(s.CreatedAt))
				}
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "only secrets of this format")
	return cmd
}

func newSecretDelete(e *env) *cobra.Command {
	return newDeleteCmd(e, "secret", func(c *api.Client, cmd *cobra.Command, project, name string) error {
		return c.DeleteSecret(cmd.Context(), project, name)
	})
}

// newDeleteCmd builds the delete command of a project resource.
func newDeleteCmd(e *env, noun string, del func(c *api.Client, cmd *cobra.Command, project, name string) error) *cobra.Command {
	var name string
	var force, ignoreNotFound bool
	cmd := &cobra.Command{
		Use: "delete", Short: "Delete a " + noun, Args: cobra.NoArgs,
		Example: fmt.Sprintf("  coligo %s delete --name NAME -f", noun),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			project, err := e.currentProject(cmd.Context(), c)
			if err != nil {
				return err
			}
			if !force {
				ok, err := e.confirm(fmt.Sprintf("Are you sure you want to delete %s %s?", noun, name), true)
				if err != nil || !ok {
					return err
				}
			}
			err = del(c, cmd, project, name)
			if isNotFound(err) && ignoreNotFound {
				err = nil
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.out, "Deleted %s %s\n", noun, name)
			return err
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", noun+" name")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "succeed when it does not exist")
	cmd.MarkFlagRequired("name")
	return cmd
}
