package apiserver

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

func egressView(p core.Project, rec core.Record, e core.Egress) api.AllowedOutboundDestination {
	return api.AllowedOutboundDestination{Name: e.Name, Type: e.Type, CIDRBlock: e.CIDRBlock, EntityTag: etag(rec.Version), ProjectID: p.ID,
		Status: e.Status, StatusDetails: &api.EgressStatusDetail{Reason: e.Status}}
}

func (a *API) listEgress(w http.ResponseWriter, r *http.Request) error {
	return listRecords(a, w, r, core.KindEgress, func(p core.Project, rec core.Record, l *api.AllowedOutboundDestinationList) (bool, error) {
		e, err := unmarshalRecord[core.Egress](rec)
		if err != nil {
			return false, err
		}
		l.AllowedOutboundDestinations = append(l.AllowedOutboundDestinations, egressView(p, rec, e))
		return true, nil
	}, func(l *api.AllowedOutboundDestinationList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.AllowedOutboundDestinations == nil {
			l.AllowedOutboundDestinations = []api.AllowedOutboundDestination{}
		}
	})
}

// egressRules reads a project's destinations by name, except skip.
func (a *API) egressRules(r *http.Request, project, skip string) (map[string]netip.Prefix, error) {
	out := map[string]netip.Prefix{}
	recs, _, err := a.cfg.Store.List(r.Context(), project, core.KindEgress, "", core.MaxEgressRules+1)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		e, err := unmarshalRecord[core.Egress](rec)
		if err != nil {
			return nil, err
		}
		if p, err := netip.ParsePrefix(e.CIDRBlock); err == nil && e.Name != skip {
			out[e.Name] = p
		}
	}
	return out, nil
}

// checkEgress validates a destination's CIDR block against the project's
// others: one that another already opens is refused, as in Code Engine (a
// private block next to allow-all is not: allow-all never opens it).
func (a *API) checkEgress(r *http.Request, project, name, cidr string) error {
	p, err := core.ParseEgressCIDR(cidr)
	if err != nil {
		return err
	}
	others, err := a.egressRules(r, project, name)
	if err != nil {
		return err
	}
	if by := core.RedundantWith(others, p); by != "" {
		return core.Invalid("cidr_block", "%s is redundant: destination %q already allows it", p, by)
	}
	return nil
}

func (a *API) createEgress(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.AllowedOutboundDestinationPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	if err := core.ValidateEgressName(in.Name); err != nil {
		return err
	}
	switch in.Type {
	case core.EgressCIDR:
	case core.EgressPrivatePath:
		return core.Invalid("type", "private_path_service_gateway is not supported on this installation: private path services are an IBM Cloud network; use cidr_block")
	case "":
		return core.Invalid("type", "is required: cidr_block")
	default:
		return core.Invalid("type", "%q is not cidr_block", clipTag(in.Type))
	}
	if in.PrivatePathServiceGatewayCRN != "" || in.IsolationPolicy != "" {
		return core.Invalid("type", "cidr_block destinations take no private_path_service_gateway_crn or isolation_policy")
	}
	if err := a.checkEgress(r, p.ID, in.Name, in.CIDRBlock); err != nil {
		return err
	}
	e := core.Egress{Name: in.Name, Type: core.EgressCIDR, CIDRBlock: in.CIDRBlock, Status: core.EgressDeploying, CreatedAt: a.cfg.Now().UTC()}
	return createRecord(a, w, r, core.Ref{Project: p.ID, Kind: core.KindEgress, Name: e.Name}, e, core.MaxEgressRules, func(rec core.Record) any { return egressView(p, rec, e) })
}

func (a *API) getEgress(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	rec, e, err := loadRecord[core.Egress](a, r, core.Ref{Project: p.ID, Kind: core.KindEgress, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	setETag(w, rec.Version)
	writeJSON(w, http.StatusOK, egressView(p, rec, e))
	return nil
}

// updateEgress applies a merge patch: cidr_block is the one field a
// cidr_block destination may change.
func (a *API) updateEgress(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	version, patch, err := readPatch(r)
	if err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindEgress, Name: r.PathValue("name")}
	_, e, err := loadRecord[core.Egress](a, r, ref)
	if err != nil {
		return err
	}
	in, err := applyPatch[api.AllowedOutboundDestinationPatch](api.AllowedOutboundDestinationPatch{CIDRBlock: e.CIDRBlock}, patch)
	if err != nil {
		return err
	}
	if in.IsolationPolicy != "" {
		return core.Invalid("isolation_policy", "applies to private path destinations only")
	}
	if err := a.checkEgress(r, p.ID, e.Name, in.CIDRBlock); err != nil {
		return err
	}
	e.CIDRBlock, e.Status = in.CIDRBlock, core.EgressDeploying
	return replaceRecord(a, w, r, ref, e, version, func(rec core.Record) any { return egressView(p, rec, e) })
}

func (a *API) deleteEgress(w http.ResponseWriter, r *http.Request) error {
	return a.deleteRecord(w, r, core.KindEgress)
}

// egressIPs answers the source addresses of the project's outbound
// traffic: on the local engine, those of the host's default route.
func (a *API) egressIPs(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.activeProject(r, core.RoleReader); err != nil {
		return err
	}
	out := api.EgressIPs{}
	if a.cfg.EgressIPs != nil {
		for _, ip := range a.cfg.EgressIPs() {
			if ip.IsPrivate() || core.InsidePrivate(netip.PrefixFrom(ip, 32)) {
				out.Private = append(out.Private, ip.String())
			} else {
				out.Public = append(out.Public, ip.String())
			}
		}
	}
	if out.Private == nil && out.Public == nil {
		return fmt.Errorf("egress addresses: %w", core.ErrUnavailable)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
