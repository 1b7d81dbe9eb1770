package e2e

import "crypto/tls"

// insecureTLS accepts the test server's self-signed certificate.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }
