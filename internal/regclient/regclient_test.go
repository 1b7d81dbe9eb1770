package regclient

import "testing"

func TestHostMatches(t *testing.T) {
	tests := []struct {
		server, host string
		want         bool
	}{
		{"us.icr.io", "us.icr.io", true},
		{"https://us.icr.io/", "us.icr.io", true},
		{"http://127.0.0.1:5000/v2/", "127.0.0.1:5000", true},
		{"docker.io", "index.docker.io", true},
		{"https://index.docker.io/v1/", "index.docker.io", true},
		{"registry-1.docker.io", "registry-1.docker.io", true},
		{"us.icr.io", "de.icr.io", false},
		{"icr.io", "us.icr.io", false},
		{"127.0.0.1:5000", "127.0.0.1:5001", false},
		{"", "docker.io", false},
	}
	for _, tt := range tests {
		if got := HostMatches(tt.server, tt.host); got != tt.want {
			t.Errorf("HostMatches(%q, %q) = %v, want %v", tt.server, tt.host, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	c := New([]string{"127.0.0.1:5000"})
	tests := []struct{ ref, def, want, scheme string }{
		{"ns/fn", "icr.io", "icr.io/ns/fn:latest", "https"},
		{"busybox", "docker.io", "index.docker.io/library/busybox:latest", "https"},
		{"127.0.0.1:5000/ns/fn:1", "icr.io", "127.0.0.1:5000/ns/fn:1", "http"},
		{"reg.example:5000/ns/fn:1", "icr.io", "reg.example:5000/ns/fn:1", "https"},
	}
	for _, tt := range tests {
		r, err := c.Parse(tt.ref, tt.def)
		if err != nil {
			t.Fatal(err)
		}
		if r.Name() != tt.want || r.Context().Scheme() != tt.scheme {
			t.Errorf("Parse(%q) = %s (%s), want %s (%s)", tt.ref, r.Name(), r.Context().Scheme(), tt.want, tt.scheme)
		}
	}
}
