package function

import "testing"

func TestAppendBounded(t *testing.T) {
	tests := []struct {
		b, add string
		limit  int
		want   string
	}{
		{"", "a\n", 10, "a\n"},
		{"a\nb\n", "c\n", 6, "a\nb\nc\n"},
		{"a\nb\n", "c\n", 5, "b\nc\n"},
		{"a\nb\n", "c\n", 4, "b\nc\n"},
		{"a\nb\n", "c\n", 3, "c\n"},
		{"aaaa\n", "bbbbbbbb", 4, ""}, // no whole line fits
	}
	for _, tt := range tests {
		if got := string(appendBounded([]byte(tt.b), []byte(tt.add), tt.limit)); got != tt.want {
			t.Errorf("appendBounded(%q, %q, %d) = %q, want %q", tt.b, tt.add, tt.limit, got, tt.want)
		}
	}
}
