package kube

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/regclient"
)

// Pull implements engine.Engine. The nodes pull; coligo asks the registry
// (with auth) what the reference points to now, records the credentials as
// the project's pull secret for that registry, and returns the reference
// pinned to the digest.
func (e *Engine) Pull(ctx context.Context, project, image string, auth *engine.RegistryAuth) (string, error) {
	ref, err := e.registries.Parse(image, "docker.io")
	if err != nil {
		return "", &engine.PullError{Image: image, Reason: engine.PullFailed, Err: err}
	}
	desc, err := remote.Head(ref, e.registries.Options(ctx, ref, auth)...)
	if err != nil {
		return "", &engine.PullError{Image: image, Reason: regclient.Reason(err, auth != nil), Err: err}
	}
	if err := e.ensureProject(ctx, project); err != nil {
		return "", err
	}
	if _, err := e.pullSecrets(ctx, project, image, auth); err != nil {
		return "", err
	}
	return ref.Context().Name() + "@" + desc.Digest.String(), nil
}

// pullSecrets checks an image with its registry unless it is pinned to a
// digest and comes without credentials (Pull checked it), stores the
// credentials as a dockerconfigjson Secret of the project, and returns the
// pull secrets a pod of the image uses: the one of its credentials, or,
// without, those the project has for the image's registry.
func (e *Engine) pullSecrets(ctx context.Context, project, image string, auth *engine.RegistryAuth) ([]corev1.LocalObjectReference, error) {
	ref, err := e.registries.Parse(image, "docker.io")
	if err != nil {
		return nil, &engine.PullError{Image: image, Reason: engine.PullFailed, Err: err}
	}
	_, pinned := ref.(name.Digest)
	if !pinned || auth != nil {
		if _, err := remote.Head(ref, e.registries.Options(ctx, ref, auth)...); err != nil {
			return nil, &engine.PullError{Image: image, Reason: regclient.Reason(err, auth != nil), Err: err}
		}
	}
	ns := Namespace(project)
	reg := ref.Context().RegistryStr()
	if auth != nil && regclient.HostMatches(auth.Server, reg) {
		s, err := dockerConfigSecret(ns, reg, auth)
		if err != nil {
			return nil, err
		}
		secrets := e.client.CoreV1().Secrets(ns)
		cur, err := secrets.Get(ctx, s.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = secrets.Create(ctx, s, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				err = nil
			}
		case err == nil && string(cur.Data[corev1.DockerConfigJsonKey]) != string(s.Data[corev1.DockerConfigJsonKey]):
			cur.Data = s.Data
			_, err = secrets.Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("store the pull secret of project %s for %s: %w", project, reg, opaque(err))
		}
		return []corev1.LocalObjectReference{{Name: s.Name}}, nil
	}
	list, err := e.client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: labelPull + "=true"})
	if err != nil {
		return nil, fmt.Errorf("list pull secrets of project %s: %w", project, opaque(err))
	}
	var out []corev1.LocalObjectReference
	for _, s := range list.Items {
		if s.Annotations[annotServer] == reg {
			out = append(out, corev1.LocalObjectReference{Name: s.Name})
		}
	}
	return out, nil
}

// dockerConfigSecret is the kubernetes.io/dockerconfigjson Secret of one
// registry user, named by a hash of registry and user (never the password).
func dockerConfigSecret(ns, reg string, auth *engine.RegistryAuth) (*corev1.Secret, error) {
	key := reg
	if reg == "docker.io" || reg == name.DefaultRegistry {
		key = "https://index.docker.io/v1/"
	}
	cfg := map[string]map[string]map[string]string{"auths": {key: {
		"username": auth.Username, "password": auth.Password,
		"auth": base64.StdEncoding.EncodeToString([]byte(auth.Username + ":" + auth.Password)),
	}}}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("pull secret for %s: %w", reg, opaque(err))
	}
	h := sha256.Sum256([]byte(reg + "\x00" + auth.Username))
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pull-" + hex.EncodeToString(h[:8]), Namespace: ns,
			Labels:      map[string]string{labelManaged: managedBy, labelPull: "true"},
			Annotations: map[string]string{annotServer: reg}},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: b},
	}, nil
}
