package jobrun

import (
	"testing"

	"github.com/coligo/coligo/internal/core"
)

func FuzzParseInstanceName(f *testing.F) {
	f.Add("myjob-jobrun-ab1cd", 3, 0)
	f.Add("a", 0, 5)
	f.Add("x-1-2-3", 9999999, 5)
	f.Fuzz(func(t *testing.T, run string, index, retry int) {
		if index < 0 || retry < 0 {
			return
		}
		r, i, n, ok := ParseInstanceName(core.InstanceName(run, index, retry))
		if !ok || r != run || i != index || n != retry {
			t.Fatalf("round trip of %q/%d/%d gave %q/%d/%d %v", run, index, retry, r, i, n, ok)
		}
	})
}
