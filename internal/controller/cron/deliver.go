package cron

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store"
)

func newID() string { return uuid.NewString() }

// send delivers one decided event and says how it went.
func (c *Controller) send(ctx context.Context, p core.Project, cs core.CronSubscription, d core.CronDelivery) core.CronDelivery {
	out := core.CronDelivery{Tick: d.Tick, ID: d.ID}
	attrs := core.CronAttributes(p, cs, d.ID, d.Tick)
	if cs.DestinationType == core.DestinationJob {
		return c.runJob(ctx, p, cs, attrs, out)
	}
	host := cs.Destination + "." + p.Subdomain + ".svc" // an app's internal name
	kind := core.KindApp
	if cs.DestinationType == core.DestinationFunction {
		host, kind = core.AppHost(cs.Destination, p, c.cfg.Domain), core.KindFunction
	}
	if _, err := c.cfg.Store.Get(ctx, core.Ref{Project: p.ID, Kind: kind, Name: cs.Destination}); err != nil {
		out.Outcome, out.Message = core.CronFailed, fmt.Sprintf("%s %s: %v", cs.DestinationType, cs.Destination, notFound(err))
		return out
	}
	wait := time.Second
	for {
		out.Attempts++
		code, err := 0, errors.New("the "+cs.DestinationType+" is not served yet")
		if c.cfg.Router.Routes(host, p.ID) { // not yet, while the server starts
			code, err = c.post(ctx, p.ID, host, cs, attrs)
		}
		out.StatusCode = code
		switch {
		case err == nil && code < 300:
			out.Outcome, out.Message = core.CronDelivered, ""
			return out
		case err == nil && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout:
			out.Outcome, out.Message = core.CronFailed, fmt.Sprintf("the %s answered %d", cs.DestinationType, code)
			return out // the destination refuses it: trying again cannot help
		case err != nil:
			out.Message = err.Error()
		default:
			out.Message = fmt.Sprintf("the %s answered %d", cs.DestinationType, code)
		}
		select {
		case <-ctx.Done():
			out.Outcome = core.CronFailed
			out.Message += "; no more attempts within the tick's budget"
			return out
		case <-time.After(wait):
		}
		wait = min(wait*2, 15*time.Second)
	}
}

func notFound(err error) error {
	if errors.Is(err, core.ErrNotFound) {
		return errors.New("does not exist")
	}
	return err
}

// post sends the event as an HTTP POST (binary mode: ce-* headers, the
// data as the body) through the router, to the project's own destination.
func (c *Controller) post(ctx context.Context, project, host string, cs core.CronSubscription, attrs map[string]string) (int, error) {
	path := cs.Path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+path, strings.NewReader(cs.Data))
	if err != nil {
		return 0, err
	}
	req.Host, req.RemoteAddr, req.RequestURI = host, "127.0.0.1:0", ""
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		req.Header.Set("Ce-"+k, attrs[k])
	}
	if ct := contentType(cs); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("User-Agent", "coligo-cron")
	w := &result{header: http.Header{}}
	c.cfg.Router.Dispatch(w, req, project)
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if ctx.Err() != nil && w.code == http.StatusOK && !w.wrote {
		return 0, errors.New("no answer within the tick's budget")
	}
	return w.code, nil
}

// contentType is the media type of a subscription's data: as given, else
// JSON when it is JSON, else plain text; none without data.
func contentType(cs core.CronSubscription) string {
	switch {
	case cs.ContentType != "":
		return cs.ContentType
	case cs.Data == "":
		return ""
	case json.Valid([]byte(cs.Data)):
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}

// result is the answer of a dispatched request: its status only.
type result struct {
	header http.Header
	code   int
	wrote  bool
}

func (r *result) Header() http.Header { return r.header }
func (r *result) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	r.wrote = true
	return len(b), nil
}
func (r *result) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *result) Flush() {}

// runJob starts a run of the job with the event in its environment. Its
// name comes from the event's id, so a delivery made again after a stop
// finds the run it made and starts none.
func (c *Controller) runJob(ctx context.Context, p core.Project, cs core.CronSubscription, attrs map[string]string, out core.CronDelivery) core.CronDelivery {
	out.Attempts = 1
	rec, err := c.cfg.Store.Get(ctx, core.Ref{Project: p.ID, Kind: core.KindJob, Name: cs.Destination})
	var job core.Job
	if err == nil {
		err = json.Unmarshal(rec.Value, &job)
	}
	if err != nil {
		out.Outcome, out.Message = core.CronFailed, fmt.Sprintf("job %s: %v", cs.Destination, notFound(err))
		return out
	}
	sum := sha256.Sum256([]byte(out.ID))
	name := job.Name
	if len(name) > 52 {
		name = strings.TrimRight(name[:52], "-")
	}
	run := core.JobRun{ID: uuid.NewString(), Name: name + "-" + hex.EncodeToString(sum[:5]), JobName: job.Name, CreatedAt: c.cfg.Now().UTC(),
		RunSpec: job.RunSpec, Status: core.RunPending, Subscription: cs.Name}
	run.RunEnvVariables = append([]core.EnvVar{}, job.RunEnvVariables...)
	lit := func(k, v string) {
		run.RunEnvVariables = append(run.RunEnvVariables, core.EnvVar{Type: core.EnvLiteral, Name: k, Value: v})
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		lit("CE_"+strings.ToUpper(k), attrs[k])
	}
	lit("CE_DATA", cs.Data)
	if ct := contentType(cs); ct != "" {
		lit("CONTENT_TYPE", ct)
	}
	run.SetIndices()
	b, err := json.Marshal(run)
	if err != nil {
		out.Outcome, out.Message = core.CronFailed, err.Error()
		return out
	}
	out.JobRun = run.Name
	_, err = c.cfg.Store.Create(ctx, core.Ref{Project: p.ID, Kind: core.KindJobRun, Name: run.Name}, b, c.cfg.MaxJobRuns)
	switch {
	case err == nil, errors.Is(err, core.ErrExists):
		out.Outcome = core.CronDelivered // ErrExists: made before a stop
	case errors.Is(err, core.ErrQuota):
		out.Outcome, out.Message = core.CronFailed, "the event is lost: the project holds the most job runs it may"
	default:
		out.Outcome, out.Message = core.CronFailed, fmt.Sprintf("start a run of job %s: %v", job.Name, err)
	}
	return out
}

// runRetention is how long a run an event started is kept once it ends.
const runRetention = 10 * time.Minute

// pruneRuns deletes the runs events started that ended over ten minutes
// ago, as Code Engine does.
func (c *Controller) pruneRuns(ctx context.Context, project string) {
	now := c.cfg.Now()
	for d, err := range store.All[core.JobRun](ctx, c.cfg.Store, project, core.KindJobRun) {
		if err != nil {
			return
		}
		r := d.Value
		if r.Subscription == "" || !r.Finished() || r.CompletionTime.IsZero() || now.Sub(r.CompletionTime) < runRetention {
			continue
		}
		if err := c.cfg.Store.Delete(ctx, d.Record.Ref); err != nil && !errors.Is(err, core.ErrNotFound) {
			c.log.Warn("delete a subscription's ended run", "project", project, "jobrun", r.Name, "err", err)
		}
	}
}
