package cli

import (
	"bytes"
	"io"
	"testing"

	"github.com/coligo/coligo/api"
)

func TestPrintOne(t *testing.T) {
	for _, tt := range []struct {
		output, headline, want string
	}{
		{"", "Created x", "Created x\n"},
		{"", "", "detail\n"},
		{"json", "Created x", "{\n  \"name\": \"x\"\n}\n"},
	} {
		var out bytes.Buffer
		e := &env{out: &out, output: tt.output}
		if err := e.printOne(map[string]string{"name": "x"}, tt.headline, func(w io.Writer) { io.WriteString(w, "detail\n") }); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want {
			t.Errorf("-o %q, headline %q: %q, want %q", tt.output, tt.headline, out.String(), tt.want)
		}
	}
}

func TestPrintRunExtras(t *testing.T) {
	on, rw := true, false
	var out bytes.Buffer
	printRunExtras(&out, &on, []api.VolumeMount{{Type: "secret", Reference: "creds", MountPath: "/etc/creds"},
		{Type: "persistent_data_store", Reference: "results", SubPath: "run1", MountPath: "/data", ReadOnly: &rw}})
	want := "Trusted Profiles:\tenabled\nVolume Mounts:\n  /etc/creds\tsecret creds (read-only)\n  /data\tpersistent data store results:run1 (read-write)\n"
	if out.String() != want {
		t.Errorf("%q, want %q", out.String(), want)
	}
	out.Reset()
	printRunExtras(&out, nil, nil)
	if out.String() != "Trusted Profiles:\tdisabled\n" {
		t.Errorf("%q", out.String())
	}
}
