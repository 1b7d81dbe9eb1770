package hsm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
	"k8s.io/kms/pkg/service"
)

const (
	ivSize  = 12
	tagBits = 128
)

// Config says which token and key to use.
type Config struct {
	Module     string // the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
	TokenLabel string
	PIN        string
	KeyLabel   string
}

// HSM is a logged-in session on a token. It is safe for concurrent use;
// operations are serialised on the one session.
type HSM struct {
	cfg     Config
	mu      sync.Mutex
	ctx     *pkcs11.Ctx
	session pkcs11.SessionHandle
}

var _ service.Service = (*HSM)(nil)

// Open loads the module, finds the token by label and logs in.
func Open(cfg Config) (*HSM, error) {
	if cfg.KeyLabel == "" {
		return nil, errors.New("a key label is required")
	}
	p := pkcs11.New(cfg.Module)
	if p == nil {
		return nil, fmt.Errorf("load PKCS#11 module %s", cfg.Module)
	}
	if err := p.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		p.Destroy()
		return nil, fmt.Errorf("initialize %s: %w", cfg.Module, err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		p.Finalize()
		p.Destroy()
		return nil, fmt.Errorf("list slots: %w", err)
	}
	for _, slot := range slots {
		info, err := p.GetTokenInfo(slot)
		if err != nil || strings.TrimSpace(info.Label) != cfg.TokenLabel {
			continue
		}
		session, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return nil, fmt.Errorf("open a session on token %q: %w", cfg.TokenLabel, err)
		}
		if err := p.Login(session, pkcs11.CKU_USER, cfg.PIN); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
			p.CloseSession(session)
			return nil, fmt.Errorf("log in to token %q: %w", cfg.TokenLabel, err)
		}
		return &HSM{cfg: cfg, ctx: p, session: session}, nil
	}
	p.Finalize()
	p.Destroy()
	return nil, fmt.Errorf("no token labelled %q in %s", cfg.TokenLabel, cfg.Module)
}

// Close logs out and unloads the module.
func (h *HSM) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ctx.Logout(h.session)
	h.ctx.CloseSession(h.session)
	h.ctx.Finalize()
	h.ctx.Destroy()
}

func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// KeyID names a version of the key.
func (h *HSM) KeyID(version int) string { return fmt.Sprintf("%s:v%d", h.cfg.KeyLabel, version) }

func (h *HSM) parseKeyID(id string) (int, error) {
	v, ok := strings.CutPrefix(id, h.cfg.KeyLabel+":v")
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n < 1 {
		return 0, fmt.Errorf("key id %q is not a version of key %s", id, h.cfg.KeyLabel)
	}
	return n, nil
}

// versions returns the key's versions and their objects. Called with h.mu held.
func (h *HSM) versions() (map[int]pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, h.cfg.KeyLabel),
	}
	if err := h.ctx.FindObjectsInit(h.session, tmpl); err != nil {
		return nil, fmt.Errorf("find key %s: %w", h.cfg.KeyLabel, err)
	}
	objs, _, err := h.ctx.FindObjects(h.session, 1000)
	h.ctx.FindObjectsFinal(h.session)
	if err != nil {
		return nil, fmt.Errorf("find key %s: %w", h.cfg.KeyLabel, err)
	}
	out := map[int]pkcs11.ObjectHandle{}
	for _, o := range objs {
		attrs, err := h.ctx.GetAttributeValue(h.session, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil || len(attrs) == 0 {
			continue
		}
		if n, err := strconv.Atoi(string(attrs[0].Value)); err == nil && n > 0 {
			out[n] = o
		}
	}
	return out, nil
}

// current returns the highest version. Called with h.mu held.
func (h *HSM) current() (int, pkcs11.ObjectHandle, error) {
	vs, err := h.versions()
	if err != nil {
		return 0, 0, err
	}
	if len(vs) == 0 {
		return 0, 0, fmt.Errorf("token %q holds no key %s", h.cfg.TokenLabel, h.cfg.KeyLabel)
	}
	keys := make([]int, 0, len(vs))
	for v := range vs {
		keys = append(keys, v)
	}
	sort.Ints(keys)
	v := keys[len(keys)-1]
	return v, vs[v], nil
}

// Rotate creates the next version of the key (version 1 when there is
// none) inside the token and returns its key id.
func (h *HSM) Rotate() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	vs, err := h.versions()
	if err != nil {
		return "", err
	}
	next := 1
	for v := range vs {
		next = max(next, v+1)
	}
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, h.cfg.KeyLabel),
		pkcs11.NewAttribute(pkcs11.CKA_ID, strconv.Itoa(next)),
	}
	if _, err := h.ctx.GenerateKey(h.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl); err != nil {
		return "", fmt.Errorf("generate version %d of key %s: %w", next, h.cfg.KeyLabel, err)
	}
	return h.KeyID(next), nil
}

// SetEnabled allows or forbids a version's use (a revocation that can be
// undone).
func (h *HSM) SetEnabled(keyID string, enabled bool) error {
	return h.withVersion(keyID, func(o pkcs11.ObjectHandle) error {
		return h.ctx.SetAttributeValue(h.session, o, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, enabled), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, enabled)})
	})
}

// Destroy deletes a version from the token: what it encrypted is gone.
func (h *HSM) Destroy(keyID string) error {
	return h.withVersion(keyID, func(o pkcs11.ObjectHandle) error { return h.ctx.DestroyObject(h.session, o) })
}

func (h *HSM) withVersion(keyID string, fn func(pkcs11.ObjectHandle) error) error {
	v, err := h.parseKeyID(keyID)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	vs, err := h.versions()
	if err != nil {
		return err
	}
	o, ok := vs[v]
	if !ok {
		return fmt.Errorf("key %s is not in token %q", keyID, h.cfg.TokenLabel)
	}
	if err := fn(o); err != nil {
		return fmt.Errorf("key %s: %w", keyID, err)
	}
	return nil
}

// Encrypt implements service.Service with the current version, AES-GCM in
// the token; the ciphertext is IV || sealed data.
func (h *HSM) Encrypt(_ context.Context, _ string, data []byte) (*service.EncryptResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, key, err := h.current()
	if err != nil {
		return nil, err
	}
	iv := make([]byte, ivSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	params := pkcs11.NewGCMParams(iv, nil, tagBits)
	defer params.Free()
	if err := h.ctx.EncryptInit(h.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key); err != nil {
		return nil, fmt.Errorf("encrypt with %s: %w", h.KeyID(v), err)
	}
	ct, err := h.ctx.Encrypt(h.session, data)
	if err != nil {
		return nil, fmt.Errorf("encrypt with %s: %w", h.KeyID(v), err)
	}
	return &service.EncryptResponse{Ciphertext: append(iv, ct...), KeyID: h.KeyID(v)}, nil
}

// Decrypt implements service.Service with the version the key id names.
func (h *HSM) Decrypt(_ context.Context, _ string, req *service.DecryptRequest) ([]byte, error) {
	v, err := h.parseKeyID(req.KeyID)
	if err != nil {
		return nil, err
	}
	if len(req.Ciphertext) < ivSize+tagBits/8 {
		return nil, errors.New("ciphertext too short")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	vs, err := h.versions()
	if err != nil {
		return nil, err
	}
	key, ok := vs[v]
	if !ok {
		return nil, fmt.Errorf("key %s is not in token %q (destroyed?)", req.KeyID, h.cfg.TokenLabel)
	}
	params := pkcs11.NewGCMParams(req.Ciphertext[:ivSize], nil, tagBits)
	defer params.Free()
	if err := h.ctx.DecryptInit(h.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key); err != nil {
		return nil, fmt.Errorf("decrypt with %s: %w", req.KeyID, err)
	}
	pt, err := h.ctx.Decrypt(h.session, req.Ciphertext[ivSize:])
	if err != nil {
		return nil, fmt.Errorf("decrypt with %s: %w", req.KeyID, err)
	}
	return pt, nil
}

// Status implements service.Service: healthy when the current version
// encrypts and decrypts a probe.
func (h *HSM) Status(ctx context.Context) (*service.StatusResponse, error) {
	resp, err := h.Encrypt(ctx, "status", []byte("coligo-kms-probe"))
	if err != nil {
		return &service.StatusResponse{Version: "v2", Healthz: err.Error()}, nil
	}
	if _, err := h.Decrypt(ctx, "status", &service.DecryptRequest{Ciphertext: resp.Ciphertext, KeyID: resp.KeyID}); err != nil {
		return &service.StatusResponse{Version: "v2", Healthz: err.Error(), KeyID: resp.KeyID}, nil
	}
	return &service.StatusResponse{Version: "v2", Healthz: "ok", KeyID: resp.KeyID}, nil
}
