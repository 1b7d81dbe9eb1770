package cli

import (
	"strings"
	"testing"

	"github.com/coligo/coligo/api"
)

func TestBuildRunEvents(t *testing.T) {
	for _, tt := range []struct {
		run  api.BuildRun
		want []string
	}{
		{api.BuildRun{CreatedAt: "t0", Status: "pending", StatusDetails: api.BuildRunStatusDetails{Reason: "pending", Message: "waiting: the project's quota of 128 vCPU is reached"}},
			[]string{"submitted", "pending: waiting: the project's quota of 128 vCPU is reached"}},
		{api.BuildRun{CreatedAt: "t0", Status: "running", StatusDetails: api.BuildRunStatusDetails{Reason: "running", StartTime: "t1"}},
			[]string{"submitted", "started"}},
		{api.BuildRun{CreatedAt: "t0", Status: "succeeded", BuildSpec: api.BuildSpec{OutputImage: "r/a:1"},
			StatusDetails: api.BuildRunStatusDetails{Reason: "succeeded", StartTime: "t1", CompletionTime: "t2", OutputDigest: "sha256:1"}},
			[]string{"submitted", "started", "succeeded (succeeded): pushed r/a:1 sha256:1"}},
		{api.BuildRun{CreatedAt: "t0", Status: "failed", StatusDetails: api.BuildRunStatusDetails{Reason: "canceled", Message: "canceled", CompletionTime: "t2"}},
			[]string{"submitted", "failed (canceled): canceled"}},
	} {
		var got []string
		for _, ev := range buildRunEvents(&tt.run) {
			got = append(got, ev.What)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%+v: %q, want %q", tt.run.StatusDetails, got, tt.want)
		}
	}
}
