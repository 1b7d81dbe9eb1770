package core

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestScheduleNext: the ticks of schedules, across the days summer time
// begins and ends in Europe/Berlin (2027-03-28 and 2027-10-31, at 02:00
// and 03:00 local): a wall time the clock skips fires at the end of the
// gap, one it shows twice fires once.
func TestScheduleNext(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, expr, tz string
		after          string
		want           []string // successive ticks, UTC
	}{
		{"every minute", "* * * * *", "UTC", "2027-01-01T10:00:30Z", []string{"2027-01-01T10:01:00Z", "2027-01-01T10:02:00Z"}},
		{"on the minute, after it", "* * * * *", "UTC", "2027-01-01T10:01:00Z", []string{"2027-01-01T10:02:00Z"}},
		{"friday by name", "0 0 * * FRI", "UTC", "2027-01-01T10:00:00Z", []string{"2027-01-08T00:00:00Z"}},
		{"every 2 minutes", "*/2 * * * *", "UTC", "2027-01-01T10:01:00Z", []string{"2027-01-01T10:02:00Z", "2027-01-01T10:04:00Z"}},
		{"tokyo midnight", "0 0 * * *", "Asia/Tokyo", "2027-01-01T00:00:00Z", []string{"2027-01-01T15:00:00Z"}},
		{"berlin 02:30 across spring forward", "30 2 * * *", "Europe/Berlin", "2027-03-26T12:00:00Z",
			[]string{"2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"}},
		{"berlin 02:30 across fall back", "30 2 * * *", "Europe/Berlin", "2027-10-30T12:00:00Z",
			[]string{"2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"}},
		{"berlin hourly across spring forward", "0 * * * *", "Europe/Berlin", "2027-03-27T23:30:00Z",
			[]string{"2027-03-28T00:00:00Z", "2027-03-28T01:00:00Z", "2027-03-28T02:00:00Z"}},
		{"berlin hourly across fall back: 02:00 once", "0 * * * *", "Europe/Berlin", "2027-10-30T23:30:00Z",
			[]string{"2027-10-31T00:00:00Z", "2027-10-31T02:00:00Z", "2027-10-31T03:00:00Z"}},
		{"in the second showing of 02:xx", "45 2 * * *", "Europe/Berlin", "2027-10-31T01:10:00Z", []string{"2027-10-31T01:45:00Z", "2027-11-01T01:45:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchedule(tc.expr, tc.tz, false)
			if err != nil {
				t.Fatal(err)
			}
			at := utc(tc.after)
			for i, w := range tc.want {
				at = s.Next(at)
				if !at.Equal(utc(w)) {
					t.Fatalf("tick %d: %s, want %s", i, at.UTC().Format(time.RFC3339), w)
				}
			}
		})
	}
}

func TestValidateCronSubscription(t *testing.T) {
	ok := func() CronSubscription {
		return CronSubscription{Name: "nightly", DestinationType: DestinationApp, Destination: "web", Schedule: "0 0 * * *", TimeZone: "UTC",
			Data: `{"a":1}`, ContentType: "application/json", Extensions: map[string]string{"tenant": "x"}, Path: "/events"}
	}
	for _, tc := range []struct {
		name  string
		edit  func(*CronSubscription)
		field string
	}{
		{"valid", func(*CronSubscription) {}, ""},
		{"job", func(s *CronSubscription) { s.DestinationType, s.Path = DestinationJob, "" }, ""},
		{"six fields", func(s *CronSubscription) { s.Schedule = "0 0 0 * * *" }, "schedule"},
		{"four fields", func(s *CronSubscription) { s.Schedule = "0 0 * *" }, "schedule"},
		{"descriptor", func(s *CronSubscription) { s.Schedule = "@hourly" }, "schedule"},
		{"time zone in the schedule", func(s *CronSubscription) { s.Schedule = "TZ=Asia/Tokyo 0 0 * * *" }, "schedule"},
		{"minute 61", func(s *CronSubscription) { s.Schedule = "61 * * * *" }, "schedule"},
		{"unknown zone", func(s *CronSubscription) { s.TimeZone = "Mars/Olympus" }, "time_zone"},
		{"local zone", func(s *CronSubscription) { s.TimeZone = "Local" }, "time_zone"},
		{"zone as a path", func(s *CronSubscription) { s.TimeZone = "../../etc/passwd" }, "time_zone"},
		{"data of 4097 bytes", func(s *CronSubscription) { s.Data = strings.Repeat("x", 4097) }, "data"},
		{"bad content type", func(s *CronSubscription) { s.ContentType = "json" }, "content_type"},
		{"header injection", func(s *CronSubscription) { s.ContentType = "text/plain\r\nX-Evil: 1" }, "content_type"},
		{"bad extension", func(s *CronSubscription) { s.Extensions = map[string]string{"Ten-Ant": "x"} }, "extensions"},
		{"extension line break", func(s *CronSubscription) { s.Extensions = map[string]string{"tenant": "a\r\nb"} }, "extensions"},
		{"path of a job", func(s *CronSubscription) { s.DestinationType = DestinationJob }, "path"},
		{"relative path", func(s *CronSubscription) { s.Path = "events" }, "path"},
		{"destination type", func(s *CronSubscription) { s.DestinationType = "queue" }, "destination_type"},
		{"destination", func(s *CronSubscription) { s.Destination = "Web" }, "destination"},
		{"name", func(s *CronSubscription) { s.Name = "-x" }, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok()
			tc.edit(&s)
			err := ValidateCronSubscription(s, false)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %v, want one naming %q", err, tc.field)
			}
		})
	}
	s := ok()
	s.Schedule = "*/2 * * * * *"
	if err := ValidateCronSubscription(s, true); err != nil {
		t.Errorf("seconds with --cron-seconds: %v", err)
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"* * * * *", "0 0 * * FRI", "*/2 1-5,7 1 JAN-MAR *", "61 * * * *", "@daily"} {
		f.Add(s, "Europe/Berlin")
	}
	f.Fuzz(func(t *testing.T, expr, tz string) {
		s, err := ParseSchedule(expr, tz, false)
		if err != nil {
			return
		}
		from := time.Date(2027, 3, 27, 23, 0, 0, 0, time.UTC)
		if next := s.Next(from); !next.IsZero() && !next.After(from) {
			t.Fatalf("%q in %s: next %s is not after %s", expr, tz, next, from)
		}
	})
}
