package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

// cronDestinationKinds are the store kinds of destinations, by type.
var cronDestinationKinds = map[string]string{core.DestinationApp: core.KindApp, core.DestinationJob: core.KindJob, core.DestinationFunction: core.KindFunction}

func (a *API) cronView(r *http.Request, p core.Project, rec core.Record, s core.CronSubscription) api.CronSubscription {
	out := api.CronSubscription{CronSubscriptionPrototype: api.CronSubscriptionPrototype{Name: s.Name, DestinationType: s.DestinationType,
		Destination: s.Destination, Schedule: s.Schedule, TimeZone: s.TimeZone, Data: s.Data, ContentType: s.ContentType, Extensions: s.Extensions, Path: s.Path},
		CreatedAt: rfc3339(s.CreatedAt), EntityTag: etag(rec.Version), Href: a.linkBase + "/v2/projects/" + p.ID + "/subscriptions/cron/" + s.Name,
		ID: s.ID, ProjectID: p.ID, ResourceType: api.ResourceTypeCronSubscription, Status: "ready",
		StatusDetails: api.CronSubscriptionStatusDetails{Reason: "ready", Deliveries: []api.CronDelivery{}}}
	if _, err := a.cfg.Store.Get(r.Context(), core.Ref{Project: p.ID, Kind: cronDestinationKinds[s.DestinationType], Name: s.Destination}); isNotFound(err) {
		out.Status, out.StatusDetails.Reason = "failed", "destination_not_found"
		out.StatusDetails.Message = "NotFound : Sink not found: the project has no " + s.DestinationType + " " + s.Destination
	}
	var st core.CronState
	if rec, err := a.cfg.Store.Get(r.Context(), core.Ref{Project: p.ID, Kind: core.KindCronState, Name: s.Name}); err == nil {
		json.Unmarshal(rec.Value, &st)
	}
	if !st.LastTick.IsZero() {
		out.StatusDetails.LastTick = rfc3339(st.LastTick)
	}
	if sched, err := core.ParseSchedule(s.Schedule, s.TimeZone, a.cfg.CronSeconds); err == nil {
		from := a.cfg.Now()
		if st.LastTick.After(from) {
			from = st.LastTick
		}
		if next := sched.Next(from); !next.IsZero() {
			out.StatusDetails.NextTick = rfc3339(next)
		}
	}
	ds := st.Deliveries
	if st.Pending != nil {
		ds = append([]core.CronDelivery{*st.Pending}, ds...)
	}
	for _, d := range ds {
		v := api.CronDelivery{Tick: rfc3339(d.Tick), ID: d.ID, Outcome: d.Outcome, Attempts: d.Attempts, StatusCode: d.StatusCode,
			JobRun: d.JobRun, Message: d.Message, Missed: d.Missed}
		if !d.At.IsZero() {
			v.At = rfc3339(d.At)
		}
		out.StatusDetails.Deliveries = append(out.StatusDetails.Deliveries, v)
	}
	return out
}

// cronFrom is a subscription from a prototype (or a patched one), with
// Code Engine's defaults, validated; its destination must exist.
func (a *API) cronFrom(r *http.Request, p core.Project, in api.CronSubscriptionPrototype, s core.CronSubscription) (core.CronSubscription, error) {
	s.DestinationType, s.Destination, s.Schedule, s.TimeZone = in.DestinationType, in.Destination, in.Schedule, in.TimeZone
	s.Data, s.ContentType, s.Extensions, s.Path = in.Data, in.ContentType, in.Extensions, in.Path
	if s.DestinationType == "" {
		s.DestinationType = core.DestinationApp
	}
	if s.Schedule == "" {
		s.Schedule = core.DefaultCronSchedule
	}
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	if err := core.ValidateCronSubscription(s, a.cfg.CronSeconds); err != nil {
		return s, err
	}
	_, err := a.cfg.Store.Get(r.Context(), core.Ref{Project: p.ID, Kind: cronDestinationKinds[s.DestinationType], Name: s.Destination})
	if isNotFound(err) {
		return s, core.Invalid("destination", "the project has no %s %s", s.DestinationType, clipTag(s.Destination))
	}
	return s, err
}

func (a *API) createCronSubscription(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.CronSubscriptionPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	s, err := a.cronFrom(r, p, in, core.CronSubscription{ID: uuid.NewString(), Name: in.Name, CreatedAt: a.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	return createRecord(a, w, r, core.Ref{Project: p.ID, Kind: core.KindCronSubscription, Name: s.Name}, s, core.MaxCronSubscriptions,
		func(rec core.Record) any { return a.cronView(r, p, rec, s) })
}

func (a *API) getCronSubscription(w http.ResponseWriter, r *http.Request) error {
	return getRecord(a, w, r, core.KindCronSubscription, func(p core.Project, rec core.Record, s core.CronSubscription) api.CronSubscription {
		return a.cronView(r, p, rec, s)
	})
}

func (a *API) listCronSubscriptions(w http.ResponseWriter, r *http.Request) error {
	return listRecords(a, w, r, core.KindCronSubscription, func(p core.Project, rec core.Record, l *api.CronSubscriptionList) (bool, error) {
		s, err := unmarshalRecord[core.CronSubscription](rec)
		if err != nil {
			return false, err
		}
		l.Subscriptions = append(l.Subscriptions, a.cronView(r, p, rec, s))
		return true, nil
	}, func(l *api.CronSubscriptionList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.Subscriptions == nil {
			l.Subscriptions = []api.CronSubscription{}
		}
	})
}

// updateCronSubscription applies a merge patch; a new schedule or time
// zone takes effect from its next tick.
func (a *API) updateCronSubscription(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	version, patch, err := readPatch(r)
	if err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindCronSubscription, Name: r.PathValue("name")}
	_, cur, err := loadRecord[core.CronSubscription](a, r, ref)
	if err != nil {
		return err
	}
	in, err := applyPatch[api.CronSubscriptionPrototype](api.CronSubscriptionPrototype{DestinationType: cur.DestinationType, Destination: cur.Destination,
		Schedule: cur.Schedule, TimeZone: cur.TimeZone, Data: cur.Data, ContentType: cur.ContentType, Extensions: cur.Extensions, Path: cur.Path}, patch)
	if err != nil {
		return err
	}
	s, err := a.cronFrom(r, p, in, cur)
	if err != nil {
		return err
	}
	return replaceRecord(a, w, r, ref, s, version, func(rec core.Record) any { return a.cronView(r, p, rec, s) })
}

// deleteCronSubscription deletes a subscription and its state.
func (a *API) deleteCronSubscription(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: core.KindCronSubscription, Name: name}); err != nil {
		return err
	}
	if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: core.KindCronState, Name: name}); err != nil && !errors.Is(err, core.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
