package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"
)

// Pair is a certificate chain (leaf first) and the leaf's key, in PEM, and
// the CA that signed it.
type Pair struct {
	CertPEM, KeyPEM []byte
	CA              *x509.Certificate
	Serial          *big.Int
}

// Issue signs a leaf for names, valid from notBefore to notAfter, with a CA
// of its own. It panics on a crypto failure, which tests cannot recover
// from either.
func Issue(names []string, notBefore, notAfter time.Time) Pair {
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "testcert CA"}, NotBefore: notBefore.Add(-time.Hour), NotAfter: notAfter.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER := must(x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey))
	ca := must(x509.ParseCertificate(caDER))
	key := newKey()
	sn := serial()
	leaf := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der := must(x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey))
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	return Pair{CertPEM: chain, KeyPEM: KeyPEM(key), CA: ca, Serial: sn}
}

// Valid is Issue for names, valid for a day from an hour ago.
func Valid(names ...string) Pair {
	return Issue(names, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// OtherKey is a key in PEM that belongs to no certificate.
func OtherKey() []byte { return KeyPEM(newKey()) }

// KeyPEM encodes a key as PKCS#8.
func KeyPEM(key *ecdsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
}

func newKey() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) }

func serial() *big.Int { return must(rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
