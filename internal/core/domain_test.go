package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/testcert"
)

func TestValidateDomainMapping(t *testing.T) {
	ok := DomainMapping{Name: "www.example.com", Component: DomainComponent{Name: "web", ResourceType: "app_v2"}, TLSSecret: "web-tls"}
	for _, tc := range []struct {
		name  string
		edit  func(*DomainMapping)
		field string // "" when valid
	}{
		{"valid", func(*DomainMapping) {}, ""},
		{"function", func(d *DomainMapping) { d.Component.ResourceType = "function_v2" }, ""},
		{"no name", func(d *DomainMapping) { d.Name = "" }, "name"},
		{"no dot", func(d *DomainMapping) { d.Name = "localhost" }, "name"},
		{"upper case", func(d *DomainMapping) { d.Name = "WWW.example.com" }, "name"},
		{"trailing dot", func(d *DomainMapping) { d.Name = "www.example.com." }, "name"},
		{"wildcard", func(d *DomainMapping) { d.Name = "*.example.com" }, "name"},
		{"long label", func(d *DomainMapping) { d.Name = strings.Repeat("a", 64) + ".example.com" }, "name"},
		{"too long", func(d *DomainMapping) { d.Name = strings.Repeat("abcdefghi.", 26) + "com" }, "name"},
		{"platform domain", func(d *DomainMapping) { d.Name = "apps.coligo.test" }, "name"},
		{"another tenant's app", func(d *DomainMapping) { d.Name = "web.abcdefghijk.apps.coligo.test" }, "name"},
		{"job", func(d *DomainMapping) { d.Component.ResourceType = "job_v2" }, "component"},
		{"bad target", func(d *DomainMapping) { d.Component.Name = "../x" }, "component"},
		{"no secret", func(d *DomainMapping) { d.TLSSecret = "" }, "tls_secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.edit(&d)
			err := ValidateDomainMapping(d, "apps.coligo.test", false)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %v, want one naming field %q", err, tc.field)
			}
		})
	}
}

func TestDomainMappingByACME(t *testing.T) {
	d := DomainMapping{Name: "www.example.com", Component: DomainComponent{Name: "web", ResourceType: "app_v2"}}
	if err := ValidateDomainMapping(d, "apps.coligo.test", true); err != nil {
		t.Errorf("with ACME: %v", err)
	}
	if err := ValidateDomainMapping(d, "apps.coligo.test", false); err == nil || !strings.Contains(err.Error(), "tls_secret") {
		t.Errorf("without ACME: %v", err)
	}
}

func TestDomainCertificate(t *testing.T) {
	now := time.Now()
	good := testcert.Valid("www.example.com", "example.com")
	wildcard := testcert.Valid("*.example.com")
	expired := testcert.Issue([]string{"www.example.com"}, now.Add(-48*time.Hour), now.Add(-time.Hour))
	early := testcert.Issue([]string{"www.example.com"}, now.Add(time.Hour), now.Add(48*time.Hour))
	for _, tc := range []struct {
		name      string
		cert, key []byte
		host      string
		want      string // in the error; "" when it fits
	}{
		{"fits", good.CertPEM, good.KeyPEM, "www.example.com", ""},
		{"second name", good.CertPEM, good.KeyPEM, "example.com", ""},
		{"wildcard", wildcard.CertPEM, wildcard.KeyPEM, "shop.example.com", ""},
		{"wildcard is one label", wildcard.CertPEM, wildcard.KeyPEM, "a.shop.example.com", "not a.shop.example.com"},
		{"other name", good.CertPEM, good.KeyPEM, "www.example.org", "is for www.example.com, example.com, not www.example.org"},
		{"expired", expired.CertPEM, expired.KeyPEM, "www.example.com", "expired at"},
		{"not yet valid", early.CertPEM, early.KeyPEM, "www.example.com", "not valid before"},
		{"other key", good.CertPEM, testcert.OtherKey(), "www.example.com", "tls_key is not the key of the certificate"},
		{"no key", good.CertPEM, []byte("nonsense"), "www.example.com", "tls_key holds no private key"},
		{"no certificate", []byte("nonsense"), good.KeyPEM, "www.example.com", "holds no PEM certificate"},
		{"garbage certificate", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), good.KeyPEM, "www.example.com", "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DomainCertificate(tc.cert, tc.key, tc.host, now)
			if tc.want == "" {
				if err != nil || c == nil || c.Leaf == nil {
					t.Fatalf("got %v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}

func FuzzDomainCertificate(f *testing.F) {
	good := testcert.Valid("www.example.com")
	f.Add(good.CertPEM, good.KeyPEM, "www.example.com")
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), []byte{}, "x.y")
	f.Fuzz(func(t *testing.T, cert, key []byte, name string) {
		if c, err := DomainCertificate(cert, key, name, time.Now()); err == nil && c.Leaf == nil {
			t.Fatal("a certificate without its leaf")
		}
	})
}

func FuzzValidateDomainMapping(f *testing.F) {
	f.Add("www.example.com", "web", "app_v2", "tls")
	f.Fuzz(func(t *testing.T, name, target, typ, secret string) {
		d := DomainMapping{Name: name, Component: DomainComponent{Name: target, ResourceType: typ}, TLSSecret: secret}
		if err := ValidateDomainMapping(d, "apps.coligo.test", false); err == nil && (!fqdn.MatchString(name) || strings.HasSuffix(name, ".apps.coligo.test")) {
			t.Fatalf("accepted %q", name)
		}
	})
}
