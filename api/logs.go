package api

import (
	"net/url"
	"strconv"
)

// LogOptions select what a logs call writes (a coligo addition to the API).
type LogOptions struct {
	Follow     bool   // keep writing while the instance runs (one instance)
	Tail       int    // > 0: only the last Tail lines of each instance
	Since      string // only lines since: a duration back from now ("10m") or an RFC 3339 time
	Timestamps bool   // each line starts with its time (RFC 3339) and a space
}

func (o LogOptions) query() url.Values {
	q := url.Values{}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Tail > 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Since != "" {
		q.Set("since", o.Since)
	}
	if o.Timestamps {
		q.Set("timestamps", "true")
	}
	return q
}
