package hsm

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"k8s.io/kms/pkg/service"

	"github.com/coligo/coligo/internal/itest"
)

func open(t *testing.T) *HSM {
	t.Helper()
	tok := itest.SoftHSM(t)
	h, err := Open(Config{Module: tok.Module, TokenLabel: tok.Token, PIN: tok.PIN, KeyLabel: "kek"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func TestEncryptDecryptRotateRevokeDestroy(t *testing.T) {
	h := open(t)
	ctx := context.Background()
	if st, _ := h.Status(ctx); st.Healthz == "ok" {
		t.Fatal("healthy without a key")
	}
	id, err := h.Rotate()
	if err != nil || id != "kek:v1" {
		t.Fatalf("first key: %q %v", id, err)
	}
	st, err := h.Status(ctx)
	if err != nil || st.Healthz != "ok" || st.KeyID != "kek:v1" || st.Version != "v2" {
		t.Fatalf("status %+v %v", st, err)
	}
	secret := []byte("a data key of 32 bytes, roughly.")
	enc, err := h.Encrypt(ctx, "u1", secret)
	if err != nil || enc.KeyID != "kek:v1" || bytes.Contains(enc.Ciphertext, secret) {
		t.Fatalf("encrypt: %+v %v", enc, err)
	}
	again, _ := h.Encrypt(ctx, "u2", secret)
	if bytes.Equal(again.Ciphertext, enc.Ciphertext) {
		t.Error("two encryptions of the same data are equal: the IV is not fresh")
	}
	dec := func(r *service.EncryptResponse) ([]byte, error) {
		return h.Decrypt(ctx, "u3", &service.DecryptRequest{Ciphertext: r.Ciphertext, KeyID: r.KeyID})
	}
	if pt, err := dec(enc); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("decrypt: %q %v", pt, err)
	}
	tampered := *enc
	tampered.Ciphertext = append([]byte{}, enc.Ciphertext...)
	tampered.Ciphertext[len(tampered.Ciphertext)-1] ^= 1
	if _, err := dec(&tampered); err == nil {
		t.Error("a tampered ciphertext decrypted")
	}

	// Rotation: a new key id encrypts, the old still decrypts.
	if id, err := h.Rotate(); err != nil || id != "kek:v2" {
		t.Fatalf("rotate: %q %v", id, err)
	}
	if st, _ := h.Status(ctx); st.KeyID != "kek:v2" {
		t.Errorf("status after rotation names %q", st.KeyID)
	}
	if pt, err := dec(enc); err != nil || !bytes.Equal(pt, secret) {
		t.Errorf("decrypt with the old version after rotation: %v", err)
	}

	// Revocation can be undone; destruction cannot.
	if err := h.SetEnabled("kek:v1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := dec(enc); err == nil {
		t.Error("a disabled key decrypted")
	}
	if err := h.SetEnabled("kek:v1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := dec(enc); err != nil {
		t.Errorf("re-enabled key: %v", err)
	}
	if err := h.Destroy("kek:v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := dec(enc); err == nil || !strings.Contains(err.Error(), "not in token") {
		t.Errorf("decrypt with a destroyed key: %v", err)
	}
	if _, err := h.Decrypt(ctx, "u", &service.DecryptRequest{Ciphertext: enc.Ciphertext, KeyID: "other:v1"}); err == nil {
		t.Error("a key id of another key was accepted")
	}
}
