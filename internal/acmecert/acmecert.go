package acmecert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
)

// Challenges answers HTTP-01 challenges: the router.
type Challenges interface {
	SetChallenge(token, keyAuth string)
	RemoveChallenge(token string)
}

// Config configures an Issuer.
type Config struct {
	Directory      string // the ACME server's directory URL
	CAFile         string // roots for the directory's HTTPS; "" the system's
	AccountKeyFile string // made (0600) the first time
	Email          string // the account's contact; may be empty
	Challenges     Challenges
	Logger         *slog.Logger
}

// Issuer obtains certificates. It is safe for concurrent use.
type Issuer struct {
	cfg    Config
	client *acme.Client

	mu         sync.Mutex
	registered bool
}

// New returns an Issuer with the account key of its file.
func New(cfg Config) (*Issuer, error) {
	key, err := accountKey(cfg.AccountKeyFile)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--acme-ca-file %s holds no PEM certificate", cfg.CAFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &Issuer{cfg: cfg, client: &acme.Client{Key: key, DirectoryURL: cfg.Directory, HTTPClient: hc, UserAgent: "coligo"}}, nil
}

// accountKey loads the account key, making it the first time.
func accountKey(file string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("write the ACME account key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the ACME account key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("the ACME account key %s is not PEM", file)
	}
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the ACME account key %s: %w", file, err)
	}
	return key, nil
}

// register makes the account known to the ACME server, once.
func (i *Issuer) register(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.registered {
		return nil
	}
	acct := &acme.Account{}
	if i.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + i.cfg.Email}
	}
	if _, err := i.client.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return fmt.Errorf("register with the ACME server: %w", err)
	}
	i.registered = true
	return nil
}

// Obtain orders a certificate for name, proves control of it by HTTP-01
// and returns the chain (leaf first) and a new key, in PEM.
func (i *Issuer) Obtain(ctx context.Context, name string) (certPEM, keyPEM []byte, err error) {
	if err := i.register(ctx); err != nil {
		return nil, nil, err
	}
	order, err := i.client.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		return nil, nil, fmt.Errorf("order a certificate for %s: %w", name, err)
	}
	for _, u := range order.AuthzURLs {
		if err := i.authorize(ctx, u); err != nil {
			return nil, nil, fmt.Errorf("prove control of %s: %w", name, err)
		}
	}
	if order, err = i.client.WaitOrder(ctx, order.URI); err != nil {
		return nil, nil, fmt.Errorf("the order for %s: %w", name, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		return nil, nil, err
	}
	chain, _, err := i.client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return nil, nil, fmt.Errorf("finalize the order for %s: %w", name, err)
	}
	for _, der := range chain {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// authorize answers an authorization's HTTP-01 challenge and waits for it.
func (i *Issuer) authorize(ctx context.Context, url string) error {
	z, err := i.client.GetAuthorization(ctx, url)
	if err != nil {
		return err
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == "http-01" {
			chal = c
		}
	}
	if chal == nil {
		return fmt.Errorf("the ACME server offers no http-01 challenge")
	}
	keyAuth, err := i.client.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		return err
	}
	i.cfg.Challenges.SetChallenge(chal.Token, keyAuth)
	defer i.cfg.Challenges.RemoveChallenge(chal.Token)
	if _, err := i.client.Accept(ctx, chal); err != nil {
		return err
	}
	_, err = i.client.WaitAuthorization(ctx, z.URI)
	return err
}
