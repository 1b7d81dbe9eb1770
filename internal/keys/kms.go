package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/coligo/coligo/internal/core"
)

// KMS is a root key held by a Kubernetes KMS v2 plugin, reached over a unix
// socket: cloud KMS services, Vault/OpenBao transit and HSMs
// (cmd/coligo-kms-pkcs11) all have one. It is safe for concurrent use.
//
// KMS v2 encryption takes no additional data, so Wrap binds it itself: the
// plugin encrypts SHA-256(aad) followed by the DEK, and Unwrap checks the
// hash.
type KMS struct {
	name    string
	socket  string
	conn    *grpc.ClientConn
	client  kmsapi.KeyManagementServiceClient
	timeout time.Duration
}

// DialKMS connects (lazily) to the plugin at socket.
func DialKMS(name, socket string) (*KMS, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("kms provider %s at %s: %w", name, socket, err)
	}
	return &KMS{name: name, socket: socket, conn: conn, client: kmsapi.NewKeyManagementServiceClient(conn), timeout: 5 * time.Second}, nil
}

// Close closes the connection.
func (k *KMS) Close() error { return k.conn.Close() }

// Name implements seal.Wrapper.
func (k *KMS) Name() string { return k.name }

func uid() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// unavailable marks an error of the plugin as a key that cannot be used
// now: the caller answers 503 and tries again later.
func (k *KMS) unavailable(op string, err error) error {
	return fmt.Errorf("kms provider %s: %s: %v: %w", k.name, op, err, core.ErrUnavailable)
}

// Wrap implements seal.Wrapper with the plugin's current key.
func (k *KMS) Wrap(ctx context.Context, dek, aad []byte) (string, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	sum := sha256.Sum256(aad)
	resp, err := k.client.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: append(sum[:], dek...), Uid: uid()})
	if err != nil {
		return "", nil, k.unavailable("encrypt", err)
	}
	if resp.KeyId == "" || len(resp.Ciphertext) == 0 {
		return "", nil, k.unavailable("encrypt", errors.New("the plugin answered without a key id or ciphertext"))
	}
	return resp.KeyId, resp.Ciphertext, nil
}

// Unwrap implements seal.Wrapper.
func (k *KMS) Unwrap(ctx context.Context, keyID string, wrapped, aad []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	resp, err := k.client.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: wrapped, KeyId: keyID, Uid: uid()})
	if err != nil {
		return nil, k.unavailable("decrypt with key "+keyID, err)
	}
	sum := sha256.Sum256(aad)
	if len(resp.Plaintext) != len(sum)+32 || !bytes.Equal(resp.Plaintext[:len(sum)], sum[:]) {
		return nil, errors.New("the unwrapped data key belongs to another project")
	}
	return resp.Plaintext[len(sum):], nil
}

// KeyID implements seal.Wrapper: the plugin's current key.
func (k *KMS) KeyID(ctx context.Context) (string, error) { return k.Status(ctx) }

// Status asks the plugin for its health and current key id.
func (k *KMS) Status(ctx context.Context) (keyID string, err error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	resp, err := k.client.Status(ctx, &kmsapi.StatusRequest{})
	if err != nil {
		return "", k.unavailable("status", err)
	}
	if resp.Healthz != "ok" {
		return resp.KeyId, k.unavailable("status", fmt.Errorf("unhealthy: %s", resp.Healthz))
	}
	return resp.KeyId, nil
}
