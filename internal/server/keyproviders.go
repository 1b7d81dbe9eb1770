package server

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/keys"
	"github.com/coligo/coligo/internal/seal"
)

// keyProviders are the local root key and the KMS v2 plugins, with the
// health of each as last checked.
type keyProviders struct {
	local *keys.Local
	kms   map[string]*keys.KMS
	order []string // the default first
	up    *prometheus.GaugeVec
	log   *slog.Logger
	seal  *seal.Sealer
	audit func(core.AuditEvent) // records provider failures and recoveries; nil until the store is open

	mu     sync.Mutex
	health map[string]string
}

func newKeyProviders(local *keys.Local, specs []string, def string, reg prometheus.Registerer, log *slog.Logger) (*keyProviders, error) {
	kp := &keyProviders{local: local, kms: map[string]*keys.KMS{}, log: log, health: map[string]string{local.Name(): "ok"},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "coligo_key_provider_up", Help: "1 when the key provider answered its last health check, else 0.",
		}, []string{"provider"})}
	reg.MustRegister(kp.up)
	kp.up.WithLabelValues(local.Name()).Set(1)
	kp.order = []string{def}
	if def != local.Name() {
		kp.order = append(kp.order, local.Name())
	}
	for _, spec := range specs {
		name, socket, _ := strings.Cut(spec, "=")
		k, err := keys.DialKMS(name, socket)
		if err != nil {
			kp.close()
			return nil, err
		}
		kp.kms[name] = k
		if name != def {
			kp.order = append(kp.order, name)
		}
	}
	return kp, nil
}

func (kp *keyProviders) close() {
	for _, k := range kp.kms {
		k.Close()
	}
}

// sealer wraps new DEKs with the default provider; every provider unwraps.
func (kp *keyProviders) sealer() *seal.Sealer {
	var def seal.Wrapper = kp.local
	var others []seal.Wrapper
	for name, k := range kp.kms {
		if name == kp.order[0] {
			def, others = k, append(others, kp.local)
		} else {
			others = append(others, k)
		}
	}
	kp.seal = seal.New(def, 4096, others...)
	return kp.seal
}

// status reports a provider's current key id, for a KMS provider.
func (kp *keyProviders) status(ctx context.Context, provider string) (string, bool, error) {
	k, ok := kp.kms[provider]
	if !ok {
		return "", false, nil
	}
	id, err := k.Status(ctx)
	return id, true, err
}

// check asks every KMS plugin for its health now.
func (kp *keyProviders) check(ctx context.Context) {
	for name, k := range kp.kms {
		id, err := k.Status(ctx)
		state := "ok, key " + id
		up := 1.0
		if err != nil {
			state, up = err.Error(), 0
		}
		kp.mu.Lock()
		changed := kp.health[name] != state
		kp.health[name] = state
		kp.mu.Unlock()
		kp.up.WithLabelValues(name).Set(up)
		if err != nil && kp.seal != nil {
			// A revoked key or a plugin that is down: stop serving from the
			// cached data keys, so that revocation takes effect now.
			if n := kp.seal.ForgetProvider(name); n > 0 {
				kp.log.Warn("dropped cached data keys of an unhealthy key provider", "provider", name, "keys", n)
			}
		}
		if !changed {
			continue
		}
		action := core.AuditKeyRecovered
		if err != nil {
			action = core.AuditKeyUnavailable
			kp.log.Warn("key provider unhealthy", "provider", name, "err", err)
		} else {
			kp.log.Info("key provider healthy", "provider", name, "key_id", id)
		}
		if kp.audit != nil {
			kp.audit(core.AuditEvent{Time: time.Now(), Actor: "coligo", Action: action, Target: name})
		}
	}
}

// watch checks the plugins every interval until ctx ends.
func (kp *keyProviders) watch(ctx context.Context, every time.Duration) {
	for {
		kp.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// healthMap is what /readyz shows.
func (kp *keyProviders) healthMap() map[string]string {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	out := make(map[string]string, len(kp.health))
	for k, v := range kp.health {
		out[k] = v
	}
	return out
}

// rotate gives the local root key a new version. A KMS key rotates in the
// KMS; coligo follows the key_id its plugin reports.
func (kp *keyProviders) rotate(provider string) (string, error) {
	if provider == "" || provider == kp.local.Name() {
		return kp.local.Rotate()
	}
	if _, ok := kp.kms[provider]; ok {
		return "", core.Invalid("provider", "%s is a KMS provider: rotate its key in the KMS (for coligo-kms-pkcs11: key rotate); coligo re-wraps when the plugin reports the new key_id", provider)
	}
	return "", core.Invalid("provider", "%q is not a configured key provider", provider)
}
