package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestUnknownSubcommandFails guards a bug: "coligo app creat" printed the
// group's help and exited 0, so a script's typo looked like success.
func TestUnknownSubcommandFails(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string // "" for success
		wantOut string
	}{
		{[]string{"app", "creat"}, `unknown command "creat" for "coligo app"`, ""},
		{[]string{"app", "creat", "--name", "x"}, "Did you mean this?\n\tcreate", ""},
		{[]string{"secrt"}, "Did you mean this?\n\tsecret", ""},
		{[]string{"project", "--output", "json", "lst"}, `unknown command "lst"`, ""},
		{[]string{"app"}, "", "Usage:"},
		{[]string{"app", "--help"}, "", "Usage:"},
		{[]string{"version"}, "", "Client: "},
		{[]string{"app", "get", "web", "--name", "other"}, `the name is given twice, as "web" and as --name "other"`, ""},
		{[]string{"app", "get", "web", "extra"}, "accepts at most 1 arg", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			root := newRoot(strings.NewReader(""), &out, &out)
			root.SetArgs(tt.args)
			err := root.Execute()
			if tt.wantErr == "" {
				if err != nil || !strings.Contains(out.String(), tt.wantOut) {
					t.Fatalf("got %v, output %q; want success showing %q", err, out.String(), tt.wantOut)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestConfirmWithoutTerminal guards a bug: "echo | coligo project delete
// --hard" crypto-shredded without -f. Without a terminal what cannot be
// undone is refused; what can (a soft delete) proceeds.
func TestConfirmWithoutTerminal(t *testing.T) {
	e := &env{in: strings.NewReader("y\n"), out: &bytes.Buffer{}}
	if ok, err := e.confirm("delete?", true); ok || err == nil || !strings.Contains(err.Error(), "-f") {
		t.Errorf("irreversible without a terminal: got %v %v, want a refusal naming -f", ok, err)
	}
	if ok, err := e.confirm("soft-delete?", false); !ok || err != nil {
		t.Errorf("reversible without a terminal: got %v %v, want to proceed", ok, err)
	}
}
