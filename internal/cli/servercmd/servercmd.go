package servercmd

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coligo/coligo/internal/config"
	"github.com/coligo/coligo/internal/server"
)

// New is `coligo server`: it runs the server until SIGINT or SIGTERM.
func New() *cobra.Command {
	cfg := config.Default()
	var printToken bool
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the coligo server",
		Long: `Run the coligo server. Every flag can also be set with an environment
variable COLIGO_<FLAG> (upper case, '-' as '_'), e.g. COLIGO_API_ADDR; a flag
given on the command line wins.

On first start the server creates the data dir (0700), a 32-byte root key
(root.key, 0600) unless --root-key-file is given, and an admin token in
<data-dir>/admin.token (0600).`,
		Example: `  coligo server --data-dir /tmp/coligo
  COLIGO_API_ADDR=0.0.0.0:7443 coligo server --tls-self-signed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			if printToken {
				// For an image without a shell: kubectl exec ... coligo server --print-admin-token
				b, err := os.ReadFile(filepath.Join(cfg.DataDir, server.AdminToken))
				if err != nil {
					return fmt.Errorf("the admin token (the server writes it on its first start): %w", err)
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			log, err := newLogger(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return server.Run(ctx, cfg, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "folder for the store, root key and admin token")
	f.StringVar(&cfg.APIAddr, "api-addr", cfg.APIAddr, "address of the API; plain HTTP only on loopback")
	f.StringVar(&cfg.ExternalURL, "external-url", "", "URL clients reach the API at, e.g. https://coligo.example.com; every href is built from it, never from the request's Host (default: the listen address)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (PEM); loaded again when it changes, so a renewal needs no restart")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.BoolVar(&cfg.TLSSelfSigned, "tls-self-signed", false, "serve TLS with a self-signed certificate generated into the data dir (clients trust it with coligo login --ca-file <data-dir>/tls.crt)")
	f.StringSliceVar(&cfg.TLSSANs, "tls-san", nil, "a DNS name or IP address the self-signed certificate covers besides localhost, the host name and the listen address, e.g. a Kubernetes Service name (repeatable)")
	f.StringVar(&cfg.Restore, "restore", "", "a backup (coligo admin backup) to restore as the store of a data dir that has none; the root key must be the backup's (in the data dir, or --root-key-file)")
	f.StringVar(&cfg.RootKeyFile, "root-key-file", "", "32-byte root key file (default: <data-dir>/root.key, created on first start)")
	f.StringVar(&cfg.AuditKeyFile, "audit-key-file", "", "32-byte key of the audit log's name hashes and chain anchors (default: <data-dir>/audit.key, created on first start)")
	f.DurationVar(&cfg.AuditRetention, "audit-retention", 0, "remove audit events older than this (0 keeps them forever); each removal is itself an audit event")
	f.DurationVar(&cfg.SoftDeleteRetention, "soft-delete-retention", cfg.SoftDeleteRetention, "how long a soft-deleted project can be restored")
	f.StringVar(&cfg.Region, "region", cfg.Region, "region shown in resources and CRNs")
	f.StringVar(&cfg.AccountID, "account-id", cfg.AccountID, "account id shown in resources and CRNs")
	f.IntVar(&cfg.MaxProjects, "max-projects", cfg.MaxProjects, "projects the server holds at most, soft-deleted ones included (0: no limit)")
	f.IntVar(&cfg.MaxSecrets, "max-secrets", cfg.MaxSecrets, "secrets per project at most (0: no limit)")
	f.IntVar(&cfg.MaxConfigMaps, "max-config-maps", cfg.MaxConfigMaps, "config maps per project at most (0: no limit)")
	f.StringVar(&cfg.Domain, "domain", cfg.Domain, "domain of app URLs, also CE_DOMAIN in instances")
	f.StringVar(&cfg.ContainerdAddress, "containerd-address", cfg.ContainerdAddress, "containerd socket (\"\" runs without an engine: workloads wait)")
	f.StringVar(&cfg.CNIBinDir, "cni-bin-dir", "", "CNI plugins folder (default /usr/lib/cni, else /opt/cni/bin)")
	f.StringVar(&cfg.CNISubnet, "cni-subnet", cfg.CNISubnet, "instances' addresses; each project gets a /24 of it")
	f.StringVar(&cfg.BuildKitAddress, "buildkit-address", "", "buildkitd's address (unix:///run/buildkit/buildkitd.sock, tcp://host:port) that runs builds; none: build runs are refused")
	f.StringVar(&cfg.BuildKitCgroup, "buildkit-cgroup", "", "a cgroup of this host (a path under /sys/fs/cgroup's hierarchies, e.g. coligo-builds) under which each build gets one with its strategy_size's CPU and memory, its steps' parent (buildkitd runs on this host)")
	f.StringVar(&cfg.BuildKitBridge, "buildkit-bridge", "", "the bridge of this host where buildkitd puts build steps (its OCI worker's bridgeName): coligo fences it, so a step reaches the world but not this host, a private range, link-local or another build")
	f.StringSliceVar(&cfg.InsecureGitHosts, "insecure-git-host", nil, "HOST:PORT of a Git host builds may fetch from over plain HTTP, also on this machine (repeatable)")
	f.StringSliceVar(&cfg.InsecureRegistries, "insecure-registry", nil, "HOST:PORT of a registry served over plain HTTP (repeatable)")
	f.StringArrayVar(&cfg.ObjectStorage, "object-storage", nil, "LOCATION=URL: the S3-compatible object store of persistent data stores whose bucket_location is LOCATION (repeatable)")
	f.StringSliceVar(&cfg.InsecureObjectStorage, "insecure-object-storage", nil, "HOST:PORT of an object store served over plain HTTP, off loopback (repeatable)")
	f.IntVar(&cfg.MaxInstances, "max-instances", cfg.MaxInstances, "instances running at once, server-wide; the rest queue")
	f.IntVar(&cfg.ProjectMaxInstances, "project-max-instances", 0, "job run instances one project may hold at once (default 3/4 of --max-instances), so another project always has room")
	f.IntVar(&cfg.QuotaInstances, "project-quota-instances", cfg.QuotaInstances, "instances of apps and job runs one project may have running at once; more wait with reason waiting_for_resources")
	f.StringVar(&cfg.QuotaCPU, "project-quota-cpu", cfg.QuotaCPU, "vCPU the running instances of one project may hold together")
	f.StringVar(&cfg.QuotaMemory, "project-quota-memory", cfg.QuotaMemory, "memory the running instances of one project may hold together (M and G are decimal, Mi and Gi binary)")
	f.StringVar(&cfg.QuotaEphemeral, "project-quota-ephemeral-storage", cfg.QuotaEphemeral, "ephemeral storage the running instances of one project may hold together")
	f.BoolVar(&cfg.UserNS, "userns", cfg.UserNS, "run instances in user namespaces (local engine): root in an instance is an unprivileged host user of a range per project; --userns=false runs them as the host's users")
	f.IntVar(&cfg.PidsLimit, "pids-limit", cfg.PidsLimit, "processes and threads one instance may hold (local engine): a fork bomb stays in its instance")
	f.DurationVar(&cfg.ImagePruneInterval, "image-prune-interval", cfg.ImagePruneInterval, "how often cached images that no job or unfinished run refers to are removed")
	f.IntVar(&cfg.MaxJobs, "max-jobs", cfg.MaxJobs, "jobs per project at most (0: no limit)")
	f.IntVar(&cfg.MaxJobRuns, "max-job-runs", cfg.MaxJobRuns, "job runs per project at most (0: no limit)")
	f.IntVar(&cfg.MaxApps, "max-apps", cfg.MaxApps, "apps per project at most (0: no limit)")
	f.StringVar(&cfg.RouterAddr, "router-addr", cfg.RouterAddr, "address of the router that serves apps at http://<app>.<project subdomain>.<domain>")
	f.StringVar(&cfg.RouterTLSAddr, "router-tls-addr", cfg.RouterTLSAddr, "address where the router serves apps and functions over HTTPS (HTTP/2 and HTTP/1.1); \"\" serves none")
	f.StringVar(&cfg.RouterTLSCert, "router-tls-cert", "", "PEM certificate (chain) of the router, e.g. a wildcard for *.<project subdomain>.<domain>; without it each name served gets one signed by the router's CA (<data-dir>/router-ca.crt)")
	f.StringVar(&cfg.RouterTLSKey, "router-tls-key", "", "PEM private key of --router-tls-cert")
	f.StringVar(&cfg.ACMEDirectory, "acme-directory", "", "ACME directory URL (e.g. https://acme-v02.api.letsencrypt.org/directory): a domain mapping without a tls_secret gets its certificate there, by HTTP-01 on the router's plain listener, and renews it")
	f.StringVar(&cfg.ACMECAFile, "acme-ca-file", "", "PEM roots to trust for the ACME server's own HTTPS (a private ACME server); default the system's")
	f.StringVar(&cfg.ACMEEmail, "acme-email", "", "contact address of the ACME account")
	f.DurationVar(&cfg.AppHistoryInterval, "app-history-interval", cfg.AppHistoryInterval, "how often each app's instances and requests per second are sampled for the last hour's charts (GET …/apps/{app}/metrics, the console)")
	f.BoolVar(&cfg.CronSeconds, "cron-seconds", false, "test aid: cron schedules may start with a seconds field (6 fields), for ticks every few seconds")
	f.DurationVar(&cfg.ConsoleSessionLife, "console-session-life", cfg.ConsoleSessionLife, "how long a login to the web console (/console/) lasts")
	f.DurationVar(&cfg.ComputeTokenLife, "compute-token-life", cfg.ComputeTokenLife, "how long an instance's compute resource token is valid; it is renewed every sixth of that")
	f.IntVar(&cfg.RouterQueueDepth, "router-queue-depth", cfg.RouterQueueDepth, "requests that wait per revision when every instance is at scale_concurrency; more get 503")
	f.IntVar(&cfg.RouterLoops, "router-loops", cfg.RouterLoops, "io_uring loops that serve the router's connections: -1, one per core less one (at least one); 0, none (a goroutine per connection, as where io_uring is refused)")
	f.StringVar(&cfg.FunctionRegistryAddr, "function-registry-addr", cfg.FunctionRegistryAddr, "HOST:PORT where coligo serves its function runtime images (pull only, plain HTTP); on Kubernetes, an address the nodes reach and pull from (port 0: any free one)")
	f.StringArrayVar(&cfg.FunctionRuntimes, "function-runtime", nil, "FAMILY=PATH: an interpreter of your own to run functions on (nodejs=/opt/node22/bin/node, python=/opt/py313/bin/python3.13), before /usr/bin's; repeatable")
	f.IntVar(&cfg.FunctionPool, "function-pool", cfg.FunctionPool, "pre-warmed runtime instances kept per project, runtime and size its functions use, so that a cold invocation only gives code to a running process (0: none)")
	f.DurationVar(&cfg.AutoscaleStableWindow, "autoscale-stable-window", cfg.AutoscaleStableWindow, "window of average concurrency the autoscaler follows; an app scales to zero after this long without requests")
	f.DurationVar(&cfg.AutoscalePanicWindow, "autoscale-panic-window", cfg.AutoscalePanicWindow, "short window the autoscaler follows when demand exceeds twice the capacity")
	f.StringVar(&cfg.OCIRuntime, "oci-runtime", cfg.OCIRuntime, "OCI runtime binary the runc shim runs instances with: runc, or crun where it works with the host's cgroups")
	f.StringVar(&cfg.Engine, "engine", cfg.Engine, "what runs instances: local (containerd and CNI on this machine) or kubernetes (a cluster, through its API)")
	f.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster for --engine kubernetes (default: the in-cluster config)")
	f.StringVar(&cfg.KubeGateway, "kube-gateway", cfg.KubeGateway, "address at which pods reach coligo, for --engine kubernetes (default $POD_IP)")
	f.StringVar(&cfg.KubePodCIDR, "kube-pod-cidr", cfg.KubePodCIDR, "the cluster's pod network, for --engine kubernetes")
	f.StringArrayVar(&cfg.KMSProviders, "kms-provider", nil, "NAME=SOCKET of a Kubernetes KMS v2 plugin that can wrap project keys (repeatable), e.g. hsm=/run/coligo-kms-pkcs11.sock")
	f.StringVar(&cfg.DefaultKeyProvider, "default-key-provider", cfg.DefaultKeyProvider, "key provider of projects created without encryption.provider: local or a --kms-provider name")
	f.DurationVar(&cfg.KeyCheckInterval, "key-check-interval", cfg.KeyCheckInterval, "how often KMS plugins are asked for their health; a failing one's cached data keys are dropped, so a revocation takes effect within this time")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json")
	f.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", "", "base URL of an OTLP/HTTP collector (http://host:4318) to send traces of API and router requests to; none: nothing is traced")
	f.BoolVar(&printToken, "print-admin-token", false, "print the admin token of --data-dir and exit (the server's image has no shell to cat it with)")
	return cmd
}

// applyEnv sets each flag not given on the command line from COLIGO_<NAME>.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "COLIGO_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", name, e)
			}
		}
	})
	return err
}

func newLogger(cfg config.Server) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
}
