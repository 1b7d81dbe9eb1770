// Package hsm is the key manager behind cmd/coligo-kms-pkcs11: it encrypts
// and decrypts with AES-256 keys that never leave a PKCS#11 token, and
// implements the Kubernetes KMS v2 service (k8s.io/kms/pkg/service) on top.
//
// A key is a set of versions: secret-key objects with the same CKA_LABEL
// and CKA_ID "1", "2", …; the highest version encrypts, any version
// decrypts. The KMS key id is "<label>:v<version>", so a new version shows
// as a changed key_id in Status, as the KMS v2 contract has it. A version is
// disabled by clearing its CKA_ENCRYPT and CKA_DECRYPT, and destroyed by
// deleting the object.
package hsm
