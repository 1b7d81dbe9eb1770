package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/coligo/coligo/internal/autoscaler"
	"github.com/coligo/coligo/internal/controller/runenv"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/quota"
	"github.com/coligo/coligo/internal/router"
)

type phase int

const (
	phaseStarting phase = iota // created or adopted, not yet ready
	phaseReady                 // gets requests
	phaseDraining              // gets no new requests; stopped once idle
	phasePrepared              // created with its network, process not started: a fast cold start
)

// revState is what the controller knows of a revision. Guarded by c.mu.
type revState struct {
	key     string
	project core.Project
	rec     core.Revision
	version uint64
	insts   map[string]*inst

	// Status the controller has reached, written to the record by sync.
	status          core.RevisionStatus
	reason, message string
	digest          string
	waiting         bool // instances cannot start: a secret or config map is missing

	serving  bool
	gone     bool
	woken    bool // a request waits for an instance
	samples  []autoscaler.Sample
	since    time.Time
	scale    autoscaler.State
	autoWant int

	pulling   bool
	preparing bool
	nextPull  time.Time
	exits     int // instance exits in a row
	nextStart time.Time
}

type inst struct {
	id, ip     string
	phase      phase
	created    time.Time
	readyFails int
	liveFails  int
	nextProbe  time.Time
	probing    bool
	unready    bool // failed its readiness probe after being ready
}

func (rs *revState) setStatus(status core.RevisionStatus, reason, message string) {
	rs.status, rs.reason, rs.message = status, reason, message
}

func (rs *revState) count(p phase) int {
	n := 0
	for _, in := range rs.insts {
		if in.phase == p && !in.unready {
			n++
		}
	}
	return n
}

// active is the number of instances that are starting or ready.
func (rs *revState) active() int {
	n := 0
	for _, in := range rs.insts {
		if in.phase == phaseStarting || in.phase == phaseReady {
			n++
		}
	}
	return n
}

// prepared returns a prepared instance ready to start, or nil.
func (rs *revState) prepared() *inst {
	for _, in := range rs.insts {
		if in.phase == phasePrepared && in.ip != "" {
			return in
		}
	}
	return nil
}

func (rs *revState) endpoints() []router.Endpoint {
	var out []router.Endpoint
	for _, in := range rs.insts {
		if in.phase == phaseReady && !in.unready {
			out = append(out, router.Endpoint{ID: in.id, Addr: net.JoinHostPort(in.ip, strconv.Itoa(rs.rec.ImagePort))})
		}
	}
	slices.SortFunc(out, func(a, b router.Endpoint) int { return cmpStr(a.ID, b.ID) })
	return out
}

// publish tells the router how a revision is served and which of its
// instances are ready. Called with c.mu held.
func (c *Controller) publish(rs *revState) {
	c.cfg.Router.SetRevision(rs.key, router.RevisionConfig{
		Concurrency: rs.rec.ScaleConcurrency, Timeout: time.Duration(rs.rec.ScaleRequestTimeout) * time.Second,
		H2C: rs.rec.ImagePortName == core.PortH2C,
	}, rs.endpoints())
}

// ensurePulled pins the revision's image (once; again every 10s while the
// pull fails). Called with c.mu held.
func (c *Controller) ensurePulled(ctx context.Context, rs *revState) {
	if rs.rec.ImageDigest != "" || rs.digest != "" || rs.pulling || c.cfg.Now().Before(rs.nextPull) {
		return
	}
	rs.pulling = true
	project, spec := rs.project.ID, rs.rec.AppSpec
	c.log.Debug("pinning image", "revision", rs.key, "image", spec.ImageReference)
	c.wg.Go(func() {
		auth, fail := runenv.PullAuth(ctx, c.cfg.Store, project, spec.ImageSecret)
		var pinned string
		var err error
		if fail == nil {
			ectx, cancel := context.WithTimeout(ctx, engineStartTimeout)
			pinned, err = c.cfg.Engine.Pull(ectx, project, spec.ImageReference, auth)
			cancel()
		}
		c.mu.Lock()
		rs.pulling = false
		switch {
		case fail != nil:
			rs.setStatus(core.RevisionFailed, fail.Reason, "registry secret "+spec.ImageSecret+" is missing or not a registry secret")
			rs.nextPull = c.cfg.Now().Add(10 * time.Second)
		case errors.Is(err, engine.ErrUnavailable):
			c.log.Warn("the engine is unavailable; the pull waits", "revision", rs.key, "err", err)
			rs.nextPull = c.cfg.Now().Add(time.Second) // nothing of the revision is at fault
		case err != nil:
			reason := engine.PullFailed
			if pe, ok := engine.IsPullError(err); ok {
				reason = pe.Reason
			}
			c.log.Warn("pull failed", "revision", rs.key, "reason", reason, "err", err)
			rs.setStatus(core.RevisionFailed, reason, engine.PullMessage(reason))
			rs.nextPull = c.cfg.Now().Add(10 * time.Second)
		default:
			c.log.Info("image pinned", "revision", rs.key, "image", pinned)
			rs.digest = pinned
			if rs.rec.Status == core.RevisionFailed || rs.status == core.RevisionFailed {
				rs.setStatus(core.RevisionLoading, core.ReasonDeploying, "")
			}
		}
		c.mu.Unlock()
		c.poke()
	})
}

// Engine calls are bounded: a start (with its pull) by engineStartTimeout,
// anything else by engineTimeout.
const (
	engineStartTimeout = 5 * time.Minute
	engineTimeout      = 30 * time.Second
)

// remove removes an instance, also while the controller stops.
func (c *Controller) remove(ctx context.Context, project, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), engineTimeout)
	defer cancel()
	if err := c.cfg.Engine.Remove(ctx, project, id); err != nil {
		c.log.Warn("remove instance", "instance", id, "err", err)
	}
}

// converge starts or drains instances toward want, and keeps one prepared
// instance for a serving revision at zero. Called with c.mu held.
func (c *Controller) converge(ctx context.Context, rs *revState, want int) {
	active := rs.active()
	now := c.cfg.Now()
	want = c.claim(rs, active, want)
	c.instances.WithLabelValues(rs.project.ID, rs.rec.Name, "desired").Set(float64(want))
	c.instances.WithLabelValues(rs.project.ID, rs.rec.Name, "ready").Set(float64(rs.count(phaseReady)))
	digest := rs.rec.ImageDigest
	if digest == "" {
		digest = rs.digest
	}
	for ; active < want && digest != "" && !rs.gone && !now.Before(rs.nextStart); active++ {
		if in := rs.prepared(); in != nil {
			c.startPrepared(ctx, rs, in)
		} else {
			c.start(ctx, rs, digest)
		}
	}
	keepPrepared := rs.serving && !rs.gone && rs.rec.Status == core.RevisionReady && digest != ""
	for _, in := range rs.insts {
		if in.phase == phasePrepared && !keepPrepared {
			c.discard(ctx, rs, in)
		}
	}
	if keepPrepared && !c.noPrepare && want == 0 && active == 0 && !rs.preparing && rs.prepared() == nil && !now.Before(rs.nextStart) {
		c.prepare(ctx, rs, digest)
	}
	if active <= want {
		return
	}
	// Drain the excess: instances not ready yet first, then the least busy.
	var cand []*inst
	for _, in := range rs.insts {
		if in.phase == phaseStarting || in.phase == phaseReady {
			cand = append(cand, in)
		}
	}
	slices.SortFunc(cand, func(a, b *inst) int {
		if (a.phase == phaseReady) != (b.phase == phaseReady) {
			if a.phase == phaseReady {
				return 1
			}
			return -1
		}
		return c.cfg.Router.InFlight(rs.key, a.id) - c.cfg.Router.InFlight(rs.key, b.id)
	})
	for _, in := range cand[:active-want] {
		c.drain(ctx, rs, in)
	}
}

// claim caps want at what the project's quota leaves the revision beside
// the project's other workloads, records what the revision holds, and says
// why in its status while a revision that is not ready yet waits. Called
// with c.mu held.
func (c *Controller) claim(rs *revState, active, want int) int {
	per := quota.Instance(rs.rec.ScaleCPULimit, rs.rec.ScaleMemoryLimit, rs.rec.ScaleEphemeralStorageLimit)
	draining := 0
	for _, in := range rs.insts {
		if in.phase == phaseDraining {
			draining++
		}
	}
	granted := c.cfg.Quota.Claim(rs.project.ID, rs.key, per, active+draining, draining+want) - draining
	waiting := rs.status == core.RevisionLoading && rs.reason == core.ReasonDeployingWaitingForResources
	switch {
	case granted < want && rs.rec.Status == core.RevisionLoading && !rs.waiting:
		rs.setStatus(core.RevisionLoading, core.ReasonDeployingWaitingForResources, c.cfg.Quota.Why(rs.project.ID, per))
	case granted >= want && waiting:
		rs.setStatus(core.RevisionLoading, core.ReasonDeploying, "")
	}
	return min(want, granted)
}

// prepare creates an instance up to its process, so that the next request
// to a revision at zero only waits for the process to start. Called with
// c.mu held.
func (c *Controller) prepare(ctx context.Context, rs *revState, image string) {
	id := rs.rec.Name + "-" + randomSuffix()
	in := &inst{id: id, phase: phasePrepared}
	rs.insts[id] = in
	rs.preparing = true
	p, spec := rs.project, rs.rec
	c.wg.Go(func() {
		es, fail := c.instanceSpec(ctx, p, spec, id, image)
		var observed engine.Instance
		var err error
		if fail == nil {
			ectx, cancel := context.WithTimeout(ctx, engineStartTimeout)
			observed, err = c.cfg.Engine.Prepare(ectx, es)
			cancel()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		rs.preparing = false
		if errors.Is(err, engine.ErrNotSupported) {
			c.noPrepare = true
			delete(rs.insts, id)
			return
		}
		if fail != nil || err != nil {
			c.log.Debug("instance not prepared", "instance", id, "err", err)
			delete(rs.insts, id)
			c.wg.Go(func() { c.remove(ctx, p.ID, id) })
			rs.nextStart = c.cfg.Now().Add(time.Second)
			return
		}
		if rs.insts[id] == in && in.phase == phasePrepared {
			in.ip = observed.IP
		}
	})
}

// startPrepared starts the process of a prepared instance. Called with
// c.mu held.
func (c *Controller) startPrepared(ctx context.Context, rs *revState, in *inst) {
	in.phase, in.created = phaseStarting, c.cfg.Now()
	project := rs.project.ID
	c.log.Debug("starting a prepared instance", "instance", in.id)
	c.wg.Go(func() {
		ectx, cancel := context.WithTimeout(ctx, engineStartTimeout)
		_, err := c.cfg.Engine.Run(ectx, engine.Spec{ID: in.id, Project: project})
		cancel()
		if err != nil {
			c.log.Warn("prepared instance did not start", "instance", in.id, "err", err)
			c.mu.Lock()
			delete(rs.insts, in.id)
			rs.nextStart = c.cfg.Now().Add(time.Second)
			c.mu.Unlock()
			c.remove(ctx, project, in.id)
			c.poke()
			return
		}
		c.waitReady(ctx, rs, in)
		c.poke()
	})
}

// discard removes a prepared instance. Called with c.mu held.
func (c *Controller) discard(ctx context.Context, rs *revState, in *inst) {
	delete(rs.insts, in.id)
	project := rs.project.ID
	c.wg.Go(func() { c.remove(ctx, project, in.id) })
}

// discardPrepared removes a project's prepared instances, whose environment
// and files may be out of date after a secret or config map changed.
func (c *Controller) discardPrepared(ctx context.Context, project string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range c.revs {
		if rs.project.ID != project {
			continue
		}
		for _, in := range rs.insts {
			if in.phase == phasePrepared {
				c.discard(ctx, rs, in)
			}
		}
	}
}

func randomSuffix() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// start creates an instance and probes it until ready. Called with c.mu held.
func (c *Controller) start(ctx context.Context, rs *revState, image string) {
	id := rs.rec.Name + "-" + randomSuffix()
	in := &inst{id: id, phase: phaseStarting, created: c.cfg.Now()}
	rs.insts[id] = in
	p, spec := rs.project, rs.rec
	c.wg.Go(func() {
		es, fail := c.instanceSpec(ctx, p, spec, id, image)
		var ip string
		var err error
		if fail == nil {
			ectx, cancel := context.WithTimeout(ctx, engineStartTimeout)
			var observed engine.Instance
			observed, err = c.cfg.Engine.Run(ectx, es)
			cancel()
			ip = observed.IP
		}
		c.mu.Lock()
		switch {
		case fail != nil:
			delete(rs.insts, id)
			rs.waiting = true
			switch {
			case rs.rec.Status == core.RevisionReady:
				// A ready revision that cannot add an instance now (a secret
				// gone, its key unavailable) stays ready on what it runs.
				c.log.Warn("instance cannot start", "revision", rs.key, "reason", fail.Reason)
			case fail.Wait:
				rs.setStatus(core.RevisionLoading, core.ReasonWaiting, fail.Reason)
			default:
				rs.setStatus(core.RevisionFailed, fail.Reason, "")
			}
			rs.nextStart = c.cfg.Now().Add(time.Second)
		case err != nil:
			c.log.Warn("instance did not start", "instance", id, "err", err)
			delete(rs.insts, id)
			var me *engine.MountError
			switch {
			case rs.rec.Status == core.RevisionReady:
			case errors.Is(err, engine.ErrNoCommand):
				rs.setStatus(core.RevisionFailed, core.ReasonContainerExit(127), err.Error())
			case errors.As(err, &me):
				rs.setStatus(core.RevisionFailed, engine.MountFailed, me.Error())
			}
			c.wg.Go(func() { c.remove(ctx, p.ID, id) })
			rs.nextStart = c.cfg.Now().Add(time.Second)
		default:
			rs.waiting = false
			in.ip = ip
		}
		c.mu.Unlock()
		if fail == nil && err == nil {
			c.waitReady(ctx, rs, in)
		}
		c.poke()
	})
}

// instanceSpec is what an instance of a revision runs.
func (c *Controller) instanceSpec(ctx context.Context, p core.Project, r core.Revision, id, image string) (engine.Spec, *runenv.Failure) {
	env, fail := runenv.UserEnv(ctx, c.cfg.Store, p.ID, r.RunEnvVariables)
	if fail == nil {
		env, fail = runenv.WithBindings(ctx, c.cfg.Store, p.ID, core.KindApp, r.AppName, env)
	}
	if fail != nil {
		return engine.Spec{}, fail
	}
	mounts, buckets, fail := runenv.Mounts(ctx, c.cfg.Store, p.ID, r.RunVolumeMounts, c.cfg.ObjectStorage)
	if fail != nil {
		return engine.Spec{}, fail
	}
	for _, e := range core.AppEnv(c.cfg.Platform, p, r.AppName, r.Name, r.ImagePort) {
		env = append(env, e.Name+"="+e.Value)
	}
	env = append(env, "HOSTNAME="+id)
	size := quota.Instance(r.ScaleCPULimit, r.ScaleMemoryLimit, r.ScaleEphemeralStorageLimit)
	spec := engine.Spec{
		ID: id, Project: p.ID, Set: r.Name, Image: image, Command: r.RunCommands, Args: r.RunArguments, Env: env, UID: r.RunAsUser,
		MilliCPU: size.MilliCPU, MemoryBytes: size.Memory, EphemeralBytes: size.Ephemeral, Mounts: mounts, Buckets: buckets,
		Labels: map[string]string{LabelKind: kindApp, LabelApp: r.AppName, LabelRevision: r.Name},
	}
	if r.RunComputeResourceTokenEnabled {
		updates, _ := c.cfg.Engine.(engine.FileUpdater)
		if fail := runenv.ComputeToken(ctx, c.cfg.ComputeTokens, updates, c.cfg.ComputeTokenLife, c.cfg.Now(), &spec, "app/"+r.AppName); fail != nil {
			return engine.Spec{}, fail
		}
	}
	return spec, nil
}

// waitReady probes a starting instance fast (every 5 ms) until its
// readiness probe passes, it exits, or the start timeout passes.
func (c *Controller) waitReady(ctx context.Context, rs *revState, in *inst) {
	c.mu.Lock()
	probe, ip := rs.rec.Readiness(), in.ip
	c.mu.Unlock()
	deadline := time.Now().Add(c.cfg.StartTimeout)
	wait := time.NewTimer(time.Duration(probe.InitialDelay) * time.Second)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
		c.mu.Lock()
		alive := rs.insts[in.id] == in && in.phase == phaseStarting
		c.mu.Unlock()
		if !alive {
			return
		}
		if ip != "" && c.cfg.Probe(ctx, probe, ip, 250*time.Millisecond) == nil {
			break
		}
		if time.Now().After(deadline) {
			c.mu.Lock()
			rs.setStatus(core.RevisionFailed, core.ReasonInitialScaleNever, "no instance passed its readiness probe within "+c.cfg.StartTimeout.String())
			c.drain(ctx, rs, in)
			c.mu.Unlock()
			return
		}
		wait.Reset(5 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rs.insts[in.id] != in || in.phase != phaseStarting {
		return
	}
	in.phase = phaseReady
	live, hasLive := rs.rec.Liveness()
	in.nextProbe = c.cfg.Now().Add(probeInterval(probe, live, hasLive))
	rs.exits = 0
	if rs.rec.Status != core.RevisionReady || rs.status != core.RevisionReady {
		rs.setStatus(core.RevisionReady, core.ReasonReady, "")
	}
	c.publish(rs)
	c.log.Debug("instance ready", "instance", in.id, "after", time.Since(in.created))
}

// probeInterval is how often a ready instance is probed: the shorter of
// its probes' intervals.
func probeInterval(ready, live core.Probe, hasLive bool) time.Duration {
	n := ready.Interval
	if hasLive {
		n = min(n, live.Interval)
	}
	return time.Duration(n) * time.Second
}

// Check runs a probe once against an instance's address: a TCP connect,
// or an HTTP GET that passes on 200-399.
func Check(ctx context.Context, p core.Probe, ip string, timeout time.Duration) error {
	addr := net.JoinHostPort(ip, strconv.Itoa(p.Port))
	ctx, cancel := context.WithTimeout(ctx, max(timeout, time.Duration(p.Timeout)*time.Second))
	defer cancel()
	if p.Type != core.ProbeHTTP {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "coligo-probe")
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

var probeClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// probe runs the periodic readiness and liveness probes of ready
// instances whose time has come.
func (c *Controller) probe(ctx context.Context) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range c.revs {
		for _, in := range rs.insts {
			if in.phase != phaseReady || in.probing || now.Before(in.nextProbe) {
				continue
			}
			in.probing = true
			ready := rs.rec.Readiness()
			live, hasLive := rs.rec.Liveness()
			c.wg.Go(func() {
				rerr := c.cfg.Probe(ctx, ready, in.ip, 0)
				var lerr error
				if hasLive {
					lerr = c.cfg.Probe(ctx, live, in.ip, 0)
				}
				c.mu.Lock()
				defer c.mu.Unlock()
				in.probing = false
				in.nextProbe = c.cfg.Now().Add(probeInterval(ready, live, hasLive))
				changed := false
				if rerr != nil {
					if in.readyFails++; in.readyFails >= ready.FailureThreshold && !in.unready {
						c.log.Warn("instance failed its readiness probe", "instance", in.id, "err", rerr)
						in.unready, changed = true, true
					}
				} else {
					in.readyFails = 0
					changed = in.unready
					in.unready = false
				}
				if lerr != nil {
					if in.liveFails++; in.liveFails >= live.FailureThreshold && in.phase == phaseReady {
						c.log.Warn("instance failed its liveness probe; restarting it", "instance", in.id, "err", lerr)
						c.drain(ctx, rs, in)
						changed = true
					}
				} else {
					in.liveFails = 0
				}
				if changed {
					c.poke()
				}
			})
		}
	}
}

// drain takes an instance out of rotation, waits for its requests to
// finish, then stops it (SIGTERM, SIGKILL after the request timeout) and
// removes it. Called with c.mu held.
func (c *Controller) drain(ctx context.Context, rs *revState, in *inst) {
	if in.phase == phaseDraining {
		return
	}
	in.phase = phaseDraining
	timeout := time.Duration(rs.rec.ScaleRequestTimeout) * time.Second
	c.publish(rs)
	project := rs.project.ID
	c.wg.Go(func() {
		// Requests in flight finish first, within the request timeout. If
		// the controller stops meanwhile, the instance is left to the next
		// start's adopt.
		deadline := time.Now().Add(timeout)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for c.cfg.Router.InFlight(rs.key, in.id) > 0 && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+engineTimeout)
		defer cancel()
		if err := c.cfg.Engine.Stop(sctx, project, in.id, timeout); err != nil {
			c.log.Debug("stop instance", "instance", in.id, "err", err)
		}
		if err := c.cfg.Engine.Remove(sctx, project, in.id); err != nil {
			c.log.Warn("remove instance", "instance", in.id, "err", err)
			return // the next adopt or restart collects it
		}
		c.mu.Lock()
		delete(rs.insts, in.id)
		c.mu.Unlock()
		c.poke()
	})
}

// exited handles an instance that exited on its own.
func (c *Controller) exited(ctx context.Context, ev engine.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range c.revs {
		in := rs.insts[ev.ID]
		if in == nil || rs.project.ID != ev.Project || in.phase == phaseDraining {
			continue
		}
		c.log.Warn("instance exited", "instance", ev.ID, "exit_code", ev.ExitCode, "oom", ev.OOMKilled)
		wasReady := in.phase == phaseReady
		in.phase = phaseDraining
		delete(rs.insts, ev.ID)
		c.wg.Go(func() { c.remove(ctx, ev.Project, ev.ID) })
		rs.exits++
		// Back off 1 s, 2 s, 4 s … up to 30 s while instances keep exiting.
		rs.nextStart = c.cfg.Now().Add(min(time.Second<<min(rs.exits-1, 5), 30*time.Second))
		if !wasReady && rs.exits >= 3 && rs.rec.Status != core.RevisionReady {
			rs.setStatus(core.RevisionFailed, core.ReasonContainerExit(ev.ExitCode), fmt.Sprintf("instances exit with code %d before they are ready", ev.ExitCode))
		}
		if wasReady {
			c.publish(rs)
		}
		c.poke()
		return
	}
}

// recheckEvery is how often the instances the controller counts on are
// compared with the engine's, for an exit whose event was lost.
const recheckEvery = 10 * time.Second

// recheck handles as exited the instances the controller counts on that
// the engine shows exited or does not have.
func (c *Controller) recheck(ctx context.Context) {
	c.mu.Lock()
	known := map[string][]string{} // project → instances
	for _, rs := range c.revs {
		for id, in := range rs.insts {
			if in.phase == phaseStarting || in.phase == phaseReady {
				known[rs.project.ID] = append(known[rs.project.ID], id)
			}
		}
	}
	c.mu.Unlock()
	for project, ids := range known {
		ins, err := c.cfg.Engine.List(ctx, project, map[string]string{LabelKind: kindApp})
		if err != nil {
			c.log.Warn("list app instances", "project", project, "err", err)
			continue
		}
		byID := map[string]engine.Instance{}
		for _, in := range ins {
			byID[in.ID] = in
		}
		for _, id := range ids {
			if in, ok := byID[id]; !ok || in.State == engine.StateExited {
				c.exited(ctx, engine.Event{Project: project, ID: id, ExitCode: in.ExitCode, OOMKilled: in.OOMKilled})
			}
		}
	}
}

// adopt takes over the app instances the engine runs from before a restart:
// running ones are probed and serve again; exited ones and those of
// unknown revisions are removed by the first sync.
func (c *Controller) adopt(ctx context.Context) {
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		return
	}
	for _, p := range projects {
		if p.Status == core.ProjectHardDeleting {
			continue
		}
		ins, err := c.cfg.Engine.List(ctx, p.ID, map[string]string{LabelKind: kindApp})
		if err != nil {
			c.log.Warn("list app instances", "project", p.ID, "err", err)
			continue
		}
		for _, e := range ins {
			rev := e.Labels[LabelRevision]
			if e.State != engine.StateRunning || rev == "" {
				c.cfg.Engine.Remove(ctx, p.ID, e.ID)
				continue
			}
			rec, err := c.cfg.Store.Get(ctx, core.Ref{Project: p.ID, Kind: core.KindRevision, Name: rev})
			if err != nil {
				c.log.Info("removing an instance of a revision that is gone", "instance", e.ID)
				c.cfg.Engine.Stop(ctx, p.ID, e.ID, 0)
				c.cfg.Engine.Remove(ctx, p.ID, e.ID)
				continue
			}
			var r core.Revision
			if err := json.Unmarshal(rec.Value, &r); err != nil {
				continue
			}
			key := RevisionKey(p.ID, rev)
			c.mu.Lock()
			rs := c.revs[key]
			if rs == nil {
				rs = &revState{key: key, insts: map[string]*inst{}, since: c.cfg.Now(), project: p, rec: r, version: rec.Version}
				c.revs[key] = rs
			}
			in := &inst{id: e.ID, ip: e.IP, phase: phaseStarting, created: e.CreatedAt}
			rs.insts[e.ID] = in
			rs.autoWant++ // until the autoscaler has seen a window, keep what runs
			c.mu.Unlock()
			c.log.Info("adopted instance", "instance", e.ID)
			c.wg.Go(func() { c.waitReady(ctx, rs, in); c.poke() })
		}
	}
}
