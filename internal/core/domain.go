package core

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// KindDomainMapping is the store kind of custom domain mappings, keyed by
// their name (the FQDN). A name is unique across all projects.
const KindDomainMapping = "domain_mapping"

// MaxDomainMappingsPerProject bounds a project's custom domain mappings,
// as Code Engine's quota does.
const MaxDomainMappingsPerProject = 80

// Domain mapping statuses and the reasons beyond them.
const (
	DomainDeploying = "deploying"
	DomainReady     = "ready"
	DomainFailed    = "failed"

	DomainReasonTargetMissing = "app_ref_failed"
	DomainReasonClaimed       = "domain_already_claimed"
)

// KindACMECertificate is the store kind of the certificates obtained by
// ACME for domain mappings without a TLS secret, keyed by the mapping's
// name: project data, sealed like a secret.
const KindACMECertificate = "acme_certificate"

// ACMECertificate is a certificate chain obtained by ACME and its key.
type ACMECertificate struct {
	CertPEM string     `json:"cert_pem"`
	KeyPEM  SecretData `json:"key"` // "pem"
}

// DomainMapping serves a name of the user's, by SNI with its TLS secret's
// certificate and on plain HTTP, as an app or a function.
type DomainMapping struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Component DomainComponent `json:"component"`
	TLSSecret string          `json:"tls_secret"`
	CreatedAt time.Time       `json:"created_at"`
	// Written by the domain controller.
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// DomainComponent is what a domain mapping serves: resource type app_v2 or
// function_v2.
type DomainComponent struct {
	Name         string `json:"name"`
	ResourceType string `json:"resource_type"`
}

// DomainTargetKinds are the store kinds of what a name maps to, by
// resource type.
var DomainTargetKinds = map[string]string{"app_v2": KindApp, "function_v2": KindFunction}

var fqdn = regexp.MustCompile(`^[a-z0-9]([\-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([\-a-z0-9]*[a-z0-9])?)+$`)

// ValidateDomainMapping checks a domain mapping against the platform's own
// domain, whose names (every app's and function's) are not the user's to
// map. Without acme, a mapping needs a TLS secret.
func ValidateDomainMapping(d DomainMapping, platformDomain string, acme bool) error {
	if d.Name == "" {
		return Invalid("name", "is required: the fully qualified domain name to serve")
	}
	if len(d.Name) > 253 || !fqdn.MatchString(d.Name) {
		return Invalid("name", "%q is not a fully qualified domain name (lower-case labels of letters, digits and '-', at least one dot)", clip(d.Name))
	}
	for _, l := range strings.Split(d.Name, ".") {
		if len(l) > 63 {
			return Invalid("name", "label %q is longer than 63 characters", clip(l))
		}
	}
	if pd := strings.ToLower(strings.TrimSuffix(platformDomain, ".")); pd != "" && (d.Name == pd || strings.HasSuffix(d.Name, "."+pd)) {
		return Invalid("name", "%s is in %s, the platform's own domain, whose names are its apps' and functions'", d.Name, pd)
	}
	if DomainTargetKinds[d.Component.ResourceType] == "" {
		return Invalid("component", "resource_type %q is not app_v2 or function_v2", clip(d.Component.ResourceType))
	}
	if !IsDNSLabel(d.Component.Name) {
		return Invalid("component", "name %q is not the name of an app or a function", clip(d.Component.Name))
	}
	if d.TLSSecret == "" && !acme {
		return Invalid("tls_secret", "is required: a tls secret with the certificate for %s (this server gets none by ACME)", d.Name)
	}
	return subdomainField("tls_secret", d.TLSSecret, false)
}

// DomainCertificate checks a tls secret's certificate chain and key for
// name at now, and returns them as the router serves them. Its errors say
// what is wrong without quoting the key.
func DomainCertificate(certPEM, keyPEM []byte, name string, now time.Time) (*tls.Certificate, error) {
	var chain [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("tls_cert holds no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("tls_cert: the first certificate does not parse: %w", err)
	}
	if err := leaf.VerifyHostname(name); err != nil {
		names := leaf.DNSNames
		if len(names) > 5 {
			names = append(names[:5:5], "…")
		}
		return nil, fmt.Errorf("the certificate is for %s, not %s", strings.Join(names, ", "), name)
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("the certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	for i, der := range chain[1:] {
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("tls_cert: certificate %d of the chain does not parse: %w", i+2, err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, fmt.Errorf("tls_key is not the key of the certificate")
		}
		return nil, fmt.Errorf("tls_key holds no private key in PEM this server reads (PKCS#1, PKCS#8 or EC)")
	}
	cert.Leaf = leaf
	return &cert, nil
}
