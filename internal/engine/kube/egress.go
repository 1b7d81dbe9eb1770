package kube

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coligo/coligo/internal/core"
)

// egressRules are what a project's pods may send, as NetworkPolicy egress:
// to the project's own pods, to coligo's gateway on port 80, DNS (port 53,
// to the resolvers the pods have from their node, wherever they are), and to each
// allowed destination with what never opens cut out of it (the pod network,
// link-local, and, for a destination that is not itself inside a private
// range, the private ranges: allow-all never opens them). A destination
// inside what never opens is dropped. Nil allowed is allow-all.
func egressRules(allowed []netip.Prefix, podCIDR netip.Prefix, gateway netip.Addr) []networkingv1.NetworkPolicyEgressRule {
	tcp, udp, http, dns := corev1.ProtocolTCP, corev1.ProtocolUDP, intstr.FromInt32(80), intstr.FromInt32(53)
	rules := []networkingv1.NetworkPolicyEgressRule{
		{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
		{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: netip.PrefixFrom(gateway, gateway.BitLen()).String()}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &http}}},
		{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}}},
	}
	never := []netip.Prefix{podCIDR.Masked(), core.LinkLocal}
	for _, p := range allowed {
		if core.Within(p, podCIDR.Masked()) || core.Within(p, core.LinkLocal) {
			continue
		}
		cut := never
		if !core.InsidePrivate(p) {
			cut = append(append([]netip.Prefix{}, never...), core.PrivateRanges...)
		}
		var except []string
		for _, r := range cut {
			if core.Within(r, p) && r != p {
				except = append(except, r.String())
			}
		}
		rules = append(rules, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: p.String(), Except: except}}}})
	}
	return rules
}

// SetEgress sets the outbound destinations of a project's pods, in its
// NetworkPolicy (enforced where the cluster's network plugin enforces
// NetworkPolicy). Until it is called a project has allow-all.
func (e *Engine) SetEgress(ctx context.Context, project string, allowed []netip.Prefix) error {
	ns := Namespace(project)
	e.mu.Lock()
	if allowed == nil {
		allowed = []netip.Prefix{}
	}
	e.egress[ns] = allowed
	ready := e.ready[ns]
	e.mu.Unlock()
	if !ready {
		return nil // the policy is made with the namespace
	}
	return e.applyPolicy(ctx, ns)
}

// applyPolicy creates or updates the namespace's NetworkPolicy.
func (e *Engine) applyPolicy(ctx context.Context, ns string) error {
	pol := e.policy(ns)
	pols := e.client.NetworkingV1().NetworkPolicies(ns)
	_, err := pols.Update(ctx, pol, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		_, err = pols.Create(ctx, pol, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("network policy in %s: %w", ns, opaque(err))
	}
	return nil
}
