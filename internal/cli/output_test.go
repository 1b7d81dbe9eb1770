package cli

import (
	"bytes"
	"io"
	"testing"
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
