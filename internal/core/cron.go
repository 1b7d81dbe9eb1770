package core

import (
	"mime"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // IANA time zones wherever the server runs

	"github.com/robfig/cron/v3"
)

// Kinds of cron subscriptions and of their delivery state (a record per
// subscription, by its name), both project data.
const (
	KindCronSubscription = "subscription_cron"
	KindCronState        = "subscription_cron_state"
)

// Limits of cron subscriptions, as Code Engine's.
const (
	MaxCronSubscriptions = 100
	MaxCronData          = 4096
	DefaultCronSchedule  = "* * * * *"
)

// Destination types of a subscription.
const (
	DestinationApp      = "app"
	DestinationJob      = "job"
	DestinationFunction = "function"
)

// CronSubscription runs a job, or calls an app or a function, on a
// schedule.
type CronSubscription struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	DestinationType string            `json:"destination_type"`
	Destination     string            `json:"destination"`
	Schedule        string            `json:"schedule"`
	TimeZone        string            `json:"time_zone"`
	Data            string            `json:"data,omitempty"`
	ContentType     string            `json:"content_type,omitempty"`
	Extensions      map[string]string `json:"extensions,omitempty"`
	Path            string            `json:"path,omitempty"`
	CreatedAt       time.Time         `json:"created_at"`
}

// Outcomes of a tick's delivery.
const (
	CronPending   = "pending"
	CronDelivered = "delivered"
	CronFailed    = "failed"
	CronSkipped   = "skipped" // missed while the server was down, not delivered
)

// CronDelivery is one tick's delivery.
type CronDelivery struct {
	Tick       time.Time `json:"tick"`
	ID         string    `json:"id"` // the event's ce-id
	Outcome    string    `json:"outcome"`
	Attempts   int       `json:"attempts,omitempty"`
	StatusCode int       `json:"status_code,omitempty"`
	JobRun     string    `json:"job_run,omitempty"`
	Message    string    `json:"message,omitempty"`
	Missed     int       `json:"missed,omitempty"` // earlier ticks of a Skipped entry not delivered
	At         time.Time `json:"at,omitzero"`      // when the outcome was reached
}

// CronState is what a subscription's deliveries have reached: the tick
// last decided, its delivery if it has not ended, and the latest outcomes.
type CronState struct {
	LastTick   time.Time      `json:"last_tick"`
	Pending    *CronDelivery  `json:"pending,omitempty"`
	Deliveries []CronDelivery `json:"deliveries"`
}

// MaxCronHistory is how many outcomes a subscription keeps.
const MaxCronHistory = 10

// Record adds an outcome, newest first, keeping the latest MaxCronHistory.
func (s *CronState) Record(d CronDelivery) {
	s.Deliveries = append([]CronDelivery{d}, s.Deliveries...)
	if len(s.Deliveries) > MaxCronHistory {
		s.Deliveries = s.Deliveries[:MaxCronHistory]
	}
}

// Schedule is a cron schedule in its time zone.
type Schedule struct {
	spec cron.Schedule
	loc  *time.Location
}

var (
	standardParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	secondsParser  = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
)

// ParseSchedule parses a 5-field crontab schedule (minute hour
// day-of-month month day-of-week; names like FRI and JAN, ranges, lists,
// steps) in an IANA time zone. seconds (a test aid, --cron-seconds) also
// takes a leading seconds field.
func ParseSchedule(expr, tz string, seconds bool) (Schedule, error) {
	if len(expr) > 256 {
		return Schedule{}, Invalid("schedule", "is longer than 256 characters")
	}
	if strings.HasPrefix(strings.TrimSpace(expr), "@") || strings.Contains(expr, "TZ=") {
		return Schedule{}, Invalid("schedule", "%q is not 5 fields: minute hour day-of-month month day-of-week (give the time zone in time_zone)", clip(expr))
	}
	p := standardParser
	if seconds {
		p = secondsParser
	}
	spec, err := p.Parse(expr)
	if err != nil {
		return Schedule{}, Invalid("schedule", "%q is not a cron schedule (minute hour day-of-month month day-of-week): %v", clip(expr), err)
	}
	if tz == "" || len(tz) > 64 || strings.HasPrefix(tz, "/") || strings.Contains(tz, "..") || strings.EqualFold(tz, "local") {
		return Schedule{}, Invalid("time_zone", "%q is not an IANA time zone, e.g. Europe/Berlin or UTC", clip(tz))
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return Schedule{}, Invalid("time_zone", "%q is not an IANA time zone, e.g. Europe/Berlin or UTC", clip(tz))
	}
	return Schedule{spec: spec, loc: loc}, nil
}

// Next is the first tick after t. A schedule runs on the wall clock of its
// time zone, each matching wall-clock time once, as cron does: a time the
// clock skips (02:30 on the day summer time begins) fires when the clock
// skips it, at the end of the gap; a time the clock shows twice (on the
// day summer time ends) fires at its first showing only. The zero time
// means never (no match within five years).
func (s Schedule) Next(t time.Time) time.Time {
	from := t
	for range 8 {
		// The schedule on a clock without transitions: the wall time.
		w := s.spec.Next(floating(t.In(s.loc)))
		if w.IsZero() {
			return w
		}
		at, later := instants(w, s.loc)
		switch {
		case at.After(from):
			return at
		case later.After(from):
			return later // t was in the second showing of the hour
		}
		t = at.Add(time.Second)
		if !t.After(from) {
			t = from.Add(time.Second)
		}
	}
	return time.Time{}
}

// floating is a time's wall clock as a UTC time.
func floating(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// instants are the instants a wall-clock time w (as from floating) is in
// loc: its first showing and, when the clock shows it twice, its second;
// a wall time the clock skips is the end of the gap.
func instants(w time.Time, loc *time.Location) (first, second time.Time) {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, loc)
	if !floating(t).Equal(w) {
		start, _ := t.ZoneBounds() // skipped: the first instant after the gap
		return start, start
	}
	first, second = t, t
	for _, d := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Hour, -30 * time.Minute, time.Hour, 30 * time.Minute} {
		if o := t.Add(d); floating(o).Equal(w) {
			if o.Before(first) {
				first = o
			}
			if o.After(second) {
				second = o
			}
		}
	}
	return first, second
}

var extensionName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// ValidateCronSubscription checks a subscription with its defaults set.
func ValidateCronSubscription(s CronSubscription, seconds bool) error {
	if len(s.Name) > 253 || !IsDNSSubdomain(s.Name) {
		return Invalid("name", "%q is not 1 to 253 lower-case letters, digits, '-' and '.', beginning and ending with a letter or digit", clip(s.Name))
	}
	switch s.DestinationType {
	case DestinationApp, DestinationJob, DestinationFunction:
	default:
		return Invalid("destination_type", "%q is not app, job or function", clip(s.DestinationType))
	}
	if !IsDNSLabel(s.Destination) {
		return Invalid("destination", "%q is not the name of an app, a job or a function", clip(s.Destination))
	}
	if _, err := ParseSchedule(s.Schedule, s.TimeZone, seconds); err != nil {
		return err
	}
	if len(s.Data) > MaxCronData {
		return Invalid("data", "is %d bytes: the size limit is exceeded (at most %d)", len(s.Data), MaxCronData)
	}
	if s.ContentType != "" {
		if mt, _, err := mime.ParseMediaType(s.ContentType); err != nil || !strings.Contains(mt, "/") || len(s.ContentType) > 256 || strings.ContainsAny(s.ContentType, "\r\n") {
			return Invalid("content_type", "%q is not a media type, e.g. application/json", clip(s.ContentType))
		}
	}
	if len(s.Extensions) > 20 {
		return Invalid("extensions", "has %d attributes; at most 20", len(s.Extensions))
	}
	for k, v := range s.Extensions {
		if !extensionName.MatchString(k) {
			return Invalid("extensions", "%q is not a CloudEvents attribute name (1 to 20 lower-case letters and digits)", clip(k))
		}
		if k == "data" || k == "datacontenttype" {
			return Invalid("extensions", "%q is not an attribute the data may be replaced by", k)
		}
		if len(v) > 1024 || strings.ContainsAny(v, "\r\n\x00") {
			return Invalid("extensions", "the value of %q is longer than 1024 characters or holds a line break", k)
		}
	}
	if s.Path != "" {
		if s.DestinationType == DestinationJob {
			return Invalid("path", "is for app and function destinations; a job gets the event in its environment")
		}
		if !strings.HasPrefix(s.Path, "/") || len(s.Path) > 1024 || strings.ContainsAny(s.Path, " \r\n\x00?#") {
			return Invalid("path", "%q is not an absolute path, e.g. /events", clip(s.Path))
		}
	}
	return nil
}

// CronSource is a subscription's ce-source, as Code Engine's.
func CronSource(p Project, name string) string {
	return "/apis/v1/namespaces/" + p.Subdomain + "/pingsources/" + name
}

// CronEventType is the ce-type of cron events.
const CronEventType = "dev.knative.sources.ping"

// CronAttributes are an event's CloudEvents attributes, extensions
// included (an extension naming an attribute overrides it).
func CronAttributes(p Project, s CronSubscription, id string, at time.Time) map[string]string {
	attrs := map[string]string{"id": id, "source": CronSource(p, s.Name), "specversion": "1.0",
		"time": at.UTC().Format(time.RFC3339Nano), "type": CronEventType}
	for k, v := range s.Extensions {
		attrs[k] = v
	}
	return attrs
}
