package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/version"
)

// Main runs the command line, with extra commands beside the CLI's own
// (the server's), and returns the exit code.
func Main(ctx context.Context, args []string, extra ...*cobra.Command) int {
	root := newRoot(os.Stdin, os.Stdout, os.Stderr, extra...)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", errorMessage(err))
		return 1
	}
	return 0
}

func errorMessage(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("%s (status %d, code %s, trace %s)", ae.Message, ae.StatusCode, ae.Code, ae.Trace)
	}
	return err.Error()
}

// env holds what every command needs: streams and the resolved settings.
type env struct {
	in       io.Reader
	out, err io.Writer

	endpoint string // flags
	token    string
	project  string
	output   string
}

func newRoot(in io.Reader, out, errw io.Writer, extra ...*cobra.Command) *cobra.Command {
	e := &env{in: in, out: out, err: errw}
	root := &cobra.Command{
		Use:   "coligo",
		Short: "coligo: a self-hosted serverless platform with the Code Engine v2 API",
		Long: `coligo runs apps and jobs from container image pointers, with secrets and
config maps encrypted under a key per project. One binary is server and CLI.

The CLI finds its server and token in flags, else COLIGO_ENDPOINT and
COLIGO_TOKEN, else ~/.coligo/config.yaml (written by 'coligo login').`,
		Example: `  coligo server --data-dir /tmp/coligo
  coligo login --endpoint http://127.0.0.1:7070 --token-file /tmp/coligo/admin.token
  coligo project create --name myproject
  coligo secret create --name db --from-literal password=s3cret`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errw)
	pf := root.PersistentFlags()
	pf.StringVar(&e.endpoint, "endpoint", "", "server URL (default: COLIGO_ENDPOINT, the config file, or http://127.0.0.1:7070)")
	pf.StringVar(&e.token, "token", "", "API token (default: COLIGO_TOKEN or the config file); prefer the environment, flags show in ps")
	pf.StringVarP(&e.output, "output", "o", "table", "output format: table, json or yaml (app get also: url, project-url)")
	root.AddCommand(extra...)
	root.AddCommand(newLoginCmd(e), newProjectCmd(e), newSecretCmd(e), newConfigMapCmd(e), newDomainMappingCmd(e), newDataStoreCmd(e), newSubscriptionCmd(e),
		newJobCmd(e), newJobRunCmd(e), newAppCmd(e), newRevisionCmd(e), newFunctionCmd(e), newBuildCmd(e), newBuildRunCmd(e), newConnectivityCmd(e), newAdminCmd(e), newTokenCmd(e), newAuditCmd(e), newVersionCmd(e))
	refuseUnknown(root)
	positionalName(root)
	completion(e, root)
	return root
}

// positionalName lets every command with a --name flag, and no arguments of
// its own, take the name as its one argument too: "coligo app get web" as
// "coligo app get --name web".
func positionalName(c *cobra.Command) {
	for _, sub := range c.Commands() {
		positionalName(sub)
	}
	if !c.Runnable() || c.LocalFlags().Lookup("name") == nil || c.Args == nil || c.Args(c, []string{"x"}) == nil {
		return
	}
	c.Use += " [NAME]"
	c.Args = cobra.MaximumNArgs(1)
	pre := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			f := cmd.Flags().Lookup("name")
			if f.Changed && f.Value.String() != args[0] {
				return fmt.Errorf("the name is given twice, as %q and as --name %q", args[0], f.Value.String())
			}
			if err := cmd.Flags().Set("name", args[0]); err != nil {
				return err
			}
		}
		if pre != nil {
			return pre(cmd, args)
		}
		return nil
	}
}

// refuseUnknown makes every command group fail on a word that is none of its
// subcommands, with cobra's suggestions, instead of printing its help and
// exiting 0 (cobra's way for a group without a Run): a typo in a script
// ("app creat") must not look like success. A group given no word still
// prints its help.
func refuseUnknown(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknown(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.DisableFlagParsing = true // flags meant for the subcommand ("app creat --name x") come as words
	c.SuggestionsMinimumDistance = 2
	c.RunE = func(cmd *cobra.Command, args []string) error {
		fs := cmd.Flags()
		fs.ParseErrorsAllowlist.UnknownFlags = true
		if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
			return cmd.Help()
		}
		word := fs.Arg(0)
		msg := fmt.Sprintf("unknown command %q for %q", word, cmd.CommandPath())
		if s := cmd.SuggestionsFor(word); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return fmt.Errorf("%s\nRun '%s --help' for usage", msg, cmd.CommandPath())
	}
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "Print the versions of this client and of the server it talks to", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := fmt.Fprintf(e.out, "Client: %s (%s)\n", version.String(), version.Go()); err != nil {
				return err
			}
			server := "unknown (no server configured: coligo login)"
			if c, err := e.client(); err == nil {
				if info, err := c.Info(cmd.Context()); err == nil {
					server = fmt.Sprintf("%s (%s)", info.Version, info.GoVersion)
				} else {
					server = "unknown (" + err.Error() + ")"
				}
			}
			_, err := fmt.Fprintf(e.out, "Server: %s\n", server)
			return err
		},
	}
}

// client returns an API client for the resolved endpoint and token.
func (e *env) client() (*api.Client, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	endpoint := first(e.endpoint, os.Getenv("COLIGO_ENDPOINT"), cfg.Endpoint, "http://127.0.0.1:7070")
	token := first(e.token, os.Getenv("COLIGO_TOKEN"), cfg.Token)
	if token == "" {
		return nil, errors.New("no token: run 'coligo login', or set COLIGO_TOKEN")
	}
	hc, err := e.httpClient(first(os.Getenv("COLIGO_CA_FILE"), cfg.CAFile), cfg.InsecureSkipTLSVerify)
	if err != nil {
		return nil, err
	}
	return &api.Client{BaseURL: endpoint, Token: token, HTTP: hc}, nil
}

// httpClient trusts the certificates in caFile (else the system's roots),
// or, with insecure, any certificate, saying so on stderr each time.
func (e *env) httpClient(caFile string, insecure bool) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case insecure:
		fmt.Fprintln(e.err, "warning: the server's TLS certificate is not checked (insecure_skip_tls_verify): anyone between you and it can read and change what you send, token included")
		tc.InsecureSkipVerify = true
	case caFile != "":
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	return &http.Client{Transport: t}, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// projectGroup is a command group of the selected project's resources,
// with --project.
func (e *env) projectGroup(use string, aliases []string, short string) *cobra.Command {
	cmd := &cobra.Command{Use: use, Aliases: aliases, Short: short}
	cmd.PersistentFlags().StringVar(&e.project, "project", "", "project name or id (default: COLIGO_PROJECT or the selected project)")
	return cmd
}
