package config

import (
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/quota"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Server)
		err    string
	}{
		{"defaults", func(*Server) {}, ""},
		{"ipv6 loopback", func(s *Server) { s.APIAddr = "[::1]:7070" }, ""},
		{"localhost", func(s *Server) { s.APIAddr = "localhost:7070" }, ""},
		{"public without tls", func(s *Server) { s.APIAddr = "0.0.0.0:7070" }, "loopback"},
		{"public with self-signed", func(s *Server) { s.APIAddr = "0.0.0.0:7070"; s.TLSSelfSigned = true }, ""},
		{"cert without key", func(s *Server) { s.APIAddr = "0.0.0.0:7070"; s.TLSCert = "c" }, "--tls-key"},
		{"bad address", func(s *Server) { s.APIAddr = "nonsense" }, "--api-addr"},
		{"zero retention", func(s *Server) { s.SoftDeleteRetention = 0 }, "--soft-delete-retention"},
		{"negative quota", func(s *Server) { s.MaxSecrets = -1 }, "--max-secrets"},
		{"log format", func(s *Server) { s.LogFormat = "xml" }, "--log-format"},
		{"otlp endpoint without a scheme", func(s *Server) { s.OTLPEndpoint = "127.0.0.1:4318" }, "--otlp-endpoint"},
		{"otlp endpoint of another scheme", func(s *Server) { s.OTLPEndpoint = "grpc://collector:4317" }, "--otlp-endpoint"},
		{"no data dir", func(s *Server) { s.DataDir = "" }, "--data-dir"},
		{"unknown engine", func(s *Server) { s.Engine = "nomad" }, "--engine"},
		{"no function pool", func(s *Server) { s.FunctionPool = 0 }, ""},
		{"function pool too deep", func(s *Server) { s.FunctionPool = 17 }, "--function-pool"},
		{"function registry address", func(s *Server) { s.FunctionRegistryAddr = "10.0.0.7:5050" }, ""},
		{"function registry address without a port", func(s *Server) { s.FunctionRegistryAddr = "10.0.0.7" }, "--function-registry-addr"},
		{"insecure git host", func(s *Server) { s.InsecureGitHosts = []string{"127.0.0.1:3000"} }, ""},
		{"insecure git host without a port", func(s *Server) { s.InsecureGitHosts = []string{"git.example"} }, "--insecure-git-host"},
		{"an absolute build cgroup", func(s *Server) { s.BuildKitCgroup = "/sys/fs/cgroup/x" }, "--buildkit-cgroup"},
		{"a build cgroup leading out", func(s *Server) { s.BuildKitCgroup = "../x" }, "--buildkit-cgroup"},
		{"kubernetes", func(s *Server) { s.Engine, s.KubeGateway, s.KubePodCIDR = "kubernetes", "10.244.1.7", "10.244.0.0/16" }, ""},
		{"kubernetes without gateway", func(s *Server) { s.Engine, s.KubeGateway = "kubernetes", "" }, "--kube-gateway"},
		{"gateway outside the pods", func(s *Server) { s.Engine, s.KubeGateway, s.KubePodCIDR = "kubernetes", "192.0.2.1", "10.244.0.0/16" }, "not in --kube-pod-cidr"},
		{"external url", func(s *Server) { s.ExternalURL = "https://coligo.example.com" }, ""},
		{"external url with port and slash", func(s *Server) { s.ExternalURL = "http://10.0.0.1:7070/" }, ""},
		{"external url with a path", func(s *Server) { s.ExternalURL = "https://coligo.example.com/v2" }, "--external-url"},
		{"external url with a user", func(s *Server) { s.ExternalURL = "https://u:p@coligo.example.com" }, "--external-url"},
		{"external url not http", func(s *Server) { s.ExternalURL = "ftp://coligo.example.com" }, "--external-url"},
		{"external url without a host", func(s *Server) { s.ExternalURL = "coligo.example.com" }, "--external-url"},
		{"audit retention", func(s *Server) { s.AuditRetention = 2160 * time.Hour }, ""},
		{"audit retention too short", func(s *Server) { s.AuditRetention = time.Second }, "--audit-retention"},
		{"negative audit retention", func(s *Server) { s.AuditRetention = -time.Hour }, "--audit-retention"},
		{"pids limit too low", func(s *Server) { s.PidsLimit = 8 }, "--pids-limit"},
		{"no router loops", func(s *Server) { s.RouterLoops = 0 }, ""},
		{"router loops", func(s *Server) { s.RouterLoops = 4 }, ""},
		{"router loops below -1", func(s *Server) { s.RouterLoops = -2 }, "--router-loops"},
		{"too many router loops", func(s *Server) { s.RouterLoops = 257 }, "--router-loops"},
		{"project share", func(s *Server) { s.ProjectMaxInstances = 10 }, ""},
		{"project share over the total", func(s *Server) { s.ProjectMaxInstances = 65 }, "--project-max-instances"},
		{"negative project share", func(s *Server) { s.ProjectMaxInstances = -1 }, "--project-max-instances"},
		{"quota", func(s *Server) { s.QuotaInstances, s.QuotaCPU, s.QuotaMemory, s.QuotaEphemeral = 8, "4", "16Gi", "20G" }, ""},
		{"no instances in the quota", func(s *Server) { s.QuotaInstances = 0 }, "--project-quota-instances"},
		{"cpu quota not a number", func(s *Server) { s.QuotaCPU = "lots" }, "--project-quota-cpu"},
		{"memory quota not a size", func(s *Server) { s.QuotaMemory = "-1G" }, "--project-quota-memory"},
		{"ephemeral quota too long", func(s *Server) { s.QuotaEphemeral = "12345678901G" }, "--project-quota-ephemeral-storage"},
		{"tls sans", func(s *Server) {
			s.TLSSelfSigned, s.TLSSANs = true, []string{"coligo-api.coligo.svc", "10.0.0.7", "::1"}
		}, ""},
		{"tls san without a self-signed certificate", func(s *Server) { s.TLSSANs = []string{"coligo.example.com"} }, "--tls-san"},
		{"tls san not a name", func(s *Server) { s.TLSSelfSigned, s.TLSSANs = true, []string{"https://coligo.example.com/"} }, "--tls-san"},
		{"empty tls san", func(s *Server) { s.TLSSelfSigned, s.TLSSANs = true, []string{""} }, "--tls-san"},
		{"object storage", func(s *Server) {
			s.ObjectStorage = []string{"eu-de=https://s3.eu-de.example.com", "local=http://127.0.0.1:9000", "lan=http://minio.lan:9000"}
			s.InsecureObjectStorage = []string{"minio.lan:9000"}
		}, ""},
		{"object storage over plain http", func(s *Server) { s.ObjectStorage = []string{"lan=http://minio.lan:9000"} }, "--insecure-object-storage"},
		{"object storage without a location", func(s *Server) { s.ObjectStorage = []string{"https://s3.example.com"} }, "LOCATION=URL"},
		{"object storage with a path", func(s *Server) { s.ObjectStorage = []string{"x=https://s3.example.com/bucket"} }, "not an http(s) URL"},
		{"object storage twice", func(s *Server) { s.ObjectStorage = []string{"x=https://a.example.com", "x=https://b.example.com"} }, "twice"},
		{"acme", func(s *Server) { s.ACMEDirectory = "https://acme.example.com/directory" }, ""},
		{"acme over plain http", func(s *Server) { s.ACMEDirectory = "http://acme.example.com/directory" }, "--acme-directory"},
		{"acme without https", func(s *Server) { s.ACMEDirectory, s.RouterTLSAddr = "https://acme.example.com/directory", "" }, "--router-tls-addr"},
		{"bad pod cidr", func(s *Server) { s.Engine, s.KubeGateway, s.KubePodCIDR = "kubernetes", "10.244.1.7", "10.244/16" }, "--kube-pod-cidr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Default()
			s.DataDir = "/tmp/x"
			tt.change(&s)
			err := s.Validate()
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("got %v, want error containing %q", err, tt.err)
			}
		})
	}
	if q := Default().Quota(); q != quota.Default() {
		t.Errorf("default quota %+v, want Code Engine's %+v", q, quota.Default())
	}
	if Default().SoftDeleteRetention != 168*time.Hour || Default().APIAddr != "127.0.0.1:7070" {
		t.Error("defaults differ from the documented ones")
	}
}
