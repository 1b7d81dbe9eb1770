// Package localca is a certificate authority of one installation: the
// router's certificates for the names it serves, when the operator gives
// none, are signed by it, and clients trust its certificate.
package localca
