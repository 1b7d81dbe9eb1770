package logfmt

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// write runs writes through a Writer whose clock gives each write the next
// second from t0, and returns the records.
func write(t0 time.Time, writes ...string) []byte {
	var out bytes.Buffer
	w := NewWriter(&out, "stdout")
	n := 0
	w.now = func() time.Time { n++; return t0.Add(time.Duration(n-1) * time.Second) }
	for _, s := range writes {
		w.Write([]byte(s))
	}
	return out.Bytes()
}

func readAll(t *testing.T, recs []byte) []Line {
	t.Helper()
	d := NewDecoder(bytes.NewReader(recs))
	var out []Line
	for {
		l, err := d.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
}

func TestRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	writes := []string{"one\ntwo\n", "thr", "ee\n", "four\nfi", "ve"}
	recs := write(t0, writes...)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"all", Options{}, "one\ntwo\nthree\nfour\nfive"},
		{"tail 2", Options{Tail: 2}, "four\nfive"},
		{"tail 3", Options{Tail: 3}, "three\nfour\nfive"},
		{"tail more than there is", Options{Tail: 50}, "one\ntwo\nthree\nfour\nfive"},
		// "three" began at +1s: it is kept whole from +1s, skipped whole after.
		{"since +1s", Options{Since: t0.Add(time.Second)}, "three\nfour\nfive"},
		{"since +2s", Options{Since: t0.Add(2 * time.Second)}, "four\nfive"},
		{"since later", Options{Since: t0.Add(time.Hour)}, ""},
		{"timestamps", Options{Tail: 2, Timestamps: true}, "2026-11-28T12:00:03Z four\n2026-11-28T12:00:03Z five"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := NewPrinter(&out, tt.opts)
			for _, l := range Tail(readAll(t, recs), tt.opts.Tail) {
				if err := p.Print(l); err != nil {
					t.Fatal(err)
				}
			}
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestDecoderWaitsForAWholeRecord(t *testing.T) {
	recs := write(time.Unix(0, 0), "hello\n")
	var file bytes.Buffer
	d := NewDecoder(&file)
	file.Write(recs[:10])
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("half a record: %v, want EOF", err)
	}
	file.Write(recs[10:])
	l, err := d.Next()
	if err != nil || string(l.Text) != "hello" || !l.Complete {
		t.Fatalf("the record once whole: %+v %v", l, err)
	}
}

func TestLinesBeforeRecordsAreText(t *testing.T) {
	for _, s := range []string{"plain old line", "2026-11-28T12:00:00Z stdout X x", "2026-11-28T12:00:00Z stdin F x", "nottime stdout F x", "2026-11-28T12:00:00Z stdout F"} {
		if l := Parse([]byte(s)); string(l.Text) != s || !l.Complete || !l.Time.IsZero() {
			t.Errorf("Parse(%q) = %+v, want the text itself", s, l)
		}
	}
	if l := Parse([]byte("2026-11-28T12:00:00Z stderr P ")); len(l.Text) != 0 || l.Complete || l.Time.IsZero() {
		t.Errorf("an empty P record: %+v", l)
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("a\nb", "c\n\n", 1)
	f.Add("", "\n", 0)
	f.Fuzz(func(t *testing.T, a, b string, tail int) {
		recs := write(time.Unix(1, 0), a, b)
		var out bytes.Buffer
		p := NewPrinter(&out, Options{})
		lines := readAll(t, recs)
		for _, l := range lines {
			p.Print(l)
		}
		if out.String() != a+b {
			t.Fatalf("wrote %q %q, read back %q", a, b, out.String())
		}
		all := strings.SplitAfter(a+b, "\n")
		if all[len(all)-1] == "" {
			all = all[:len(all)-1]
		}
		if tail > 0 && tail < len(all) {
			all = all[len(all)-tail:]
		}
		out.Reset()
		p = NewPrinter(&out, Options{})
		for _, l := range Tail(lines, tail) {
			p.Print(l)
		}
		if want := strings.Join(all, ""); out.String() != want {
			t.Fatalf("tail %d of %q: %q, want %q", tail, a+b, out.String(), want)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("2026-11-28T12:00:00.5Z stdout F hello"))
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		l := Parse(rec)
		if l.Time.IsZero() && (!l.Complete || !bytes.Equal(l.Text, rec)) {
			t.Fatalf("a line that is not a record must be its own text: %+v", l)
		}
	})
}
