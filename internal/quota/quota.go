package quota

import (
	"cmp"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/core"
)

// Amount is what instances hold: one instance's size, a project's use, or
// a quota.
type Amount struct {
	Instances int   `json:"instances"`
	MilliCPU  int64 `json:"cpu_millis"`
	Memory    int64 `json:"memory_bytes"`
	Ephemeral int64 `json:"ephemeral_storage_bytes"`
}

// Default is Code Engine's project quota: 250 active instances, 128 vCPU,
// 512G of memory and 512G of ephemeral storage.
func Default() Amount {
	return Amount{Instances: 250, MilliCPU: 128_000, Memory: 512e9, Ephemeral: 512e9}
}

// Instance is the size of one instance with these limits, as the API
// stores them ("1", "4G", "400M"); a limit that does not parse counts zero
// (the API refused it before it was stored).
func Instance(cpu, memory, ephemeral string) Amount {
	c, _ := core.ParseCPU(cpu)
	m, _ := core.ParseBytes("scale_memory_limit", memory)
	e, _ := core.ParseBytes("scale_ephemeral_storage_limit", ephemeral)
	return Amount{Instances: 1, MilliCPU: c, Memory: m, Ephemeral: e}
}

// Plus is a + b.
func (a Amount) Plus(b Amount) Amount {
	return Amount{a.Instances + b.Instances, a.MilliCPU + b.MilliCPU, a.Memory + b.Memory, a.Ephemeral + b.Ephemeral}
}

// Times is n instances of a.
func (a Amount) Times(n int) Amount {
	k := int64(n)
	return Amount{a.Instances * n, a.MilliCPU * k, a.Memory * k, a.Ephemeral * k}
}

// Fit is how many instances of size per fit in limit beside used: the
// fewest that any one of the four resources allows.
func Fit(limit, used, per Amount) int {
	n := math.MaxInt
	for _, r := range [...]struct{ limit, used, per int64 }{
		{int64(limit.Instances), int64(used.Instances), int64(max(per.Instances, 1))},
		{limit.MilliCPU, used.MilliCPU, per.MilliCPU},
		{limit.Memory, used.Memory, per.Memory},
		{limit.Ephemeral, used.Ephemeral, per.Ephemeral},
	} {
		if r.per <= 0 {
			continue
		}
		free := max(r.limit-r.used, 0)
		n = min(n, int(min(free/r.per, math.MaxInt32)))
	}
	return n
}

// Short names the first resource of limit that one more instance of size
// per would exceed beside used, for a status message; "" if none would.
func Short(limit, used, per Amount) string {
	next := used.Plus(per)
	switch {
	case next.Instances > limit.Instances:
		return fmt.Sprintf("the project's quota of %d active instances is reached", limit.Instances)
	case per.MilliCPU > 0 && next.MilliCPU > limit.MilliCPU:
		return fmt.Sprintf("the project's quota of %g vCPU is reached", float64(limit.MilliCPU)/1000)
	case per.Memory > 0 && next.Memory > limit.Memory:
		return fmt.Sprintf("the project's quota of %d bytes of memory is reached", limit.Memory)
	case per.Ephemeral > 0 && next.Ephemeral > limit.Ephemeral:
		return fmt.Sprintf("the project's quota of %d bytes of ephemeral storage is reached", limit.Ephemeral)
	}
	return ""
}

// Ledger holds what each workload (a holder: an app revision, a job run)
// of each project holds, against one quota per project. The controllers of
// apps and of job runs share it, so that together they stay within it.
type Ledger struct {
	limit Amount

	mu   sync.Mutex
	held map[string]map[string]Amount // project → holder → amount
}

// NewLedger returns an empty Ledger with quota limit per project.
func NewLedger(limit Amount) *Ledger {
	return &Ledger{limit: limit, held: map[string]map[string]Amount{}}
}

// Limit is the quota of every project.
func (l *Ledger) Limit() Amount { return l.limit }

// Claim records that holder holds have instances of size per and wants
// want in all, and returns how many it may hold: want if the quota leaves
// room beside the project's other holders, else as many as fit (never
// fewer than have: what runs is not taken away). It records what it
// grants, so two controllers that claim at once cannot both take the last
// room.
func (l *Ledger) Claim(project, holder string, per Amount, have, want int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	others := l.usedLocked(project, holder)
	granted := max(have, min(want, Fit(l.limit, others, per)))
	l.setLocked(project, holder, per.Times(granted))
	return granted
}

// Set records what holder holds now, replacing what it held; a zero
// amount forgets it.
func (l *Ledger) Set(project, holder string, a Amount) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setLocked(project, holder, a)
}

// Why is what keeps the project from one more instance of size per now:
// the resource whose quota is reached, or "".
func (l *Ledger) Why(project string, per Amount) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Short(l.limit, l.usedLocked(project, ""), per)
}

// Used is what the project's workloads hold now.
func (l *Ledger) Used(project string) Amount {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.usedLocked(project, "")
}

func (l *Ledger) setLocked(project, holder string, a Amount) {
	if a == (Amount{}) {
		delete(l.held[project], holder)
		if len(l.held[project]) == 0 {
			delete(l.held, project)
		}
		return
	}
	if l.held[project] == nil {
		l.held[project] = map[string]Amount{}
	}
	l.held[project][holder] = a
}

func (l *Ledger) usedLocked(project, except string) Amount {
	var sum Amount
	for h, a := range l.held[project] {
		if h != except {
			sum = sum.Plus(a)
		}
	}
	return sum
}

// Claimant is a project waiting for slots of a shared cap.
type Claimant struct {
	Project string
	Held    int       // slots it holds now
	Want    int       // more slots it could use now, within its own limits
	Served  time.Time // when it last got a slot
}

// Share hands free slots out one at a time, each to the waiting claimant
// that holds the fewest, ties to the one served longest ago (round robin),
// then by name; it returns the slots each project gets. Nobody gets more
// than it wants, and no slot stays free while someone wants one.
func Share(free int, claims []Claimant) map[string]int {
	type claim struct {
		Claimant
		turn int // when it got a slot in this call; 0: not yet
	}
	cs := make([]claim, len(claims))
	for i, c := range claims {
		cs[i].Claimant = c
	}
	out := map[string]int{}
	for turn := 1; turn <= free; turn++ {
		best := -1
		for i, c := range cs {
			if c.Want > 0 && (best < 0 || before(c.Claimant, c.turn, cs[best].Claimant, cs[best].turn)) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		c := &cs[best]
		c.Held, c.Want, c.turn = c.Held+1, c.Want-1, turn
		out[c.Project]++
	}
	return out
}

// before orders claimants by slots held, then by when they were last
// served (a slot in this call is the latest), then by name.
func before(a Claimant, aTurn int, b Claimant, bTurn int) bool {
	if a.Held != b.Held {
		return a.Held < b.Held
	}
	if aTurn != bTurn {
		return aTurn < bTurn
	}
	if c := a.Served.Compare(b.Served); c != 0 {
		return c < 0
	}
	return cmp.Less(a.Project, b.Project)
}
