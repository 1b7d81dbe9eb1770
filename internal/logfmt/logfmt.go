package logfmt

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"time"
)

// Writer writes what a stream writes as records, one Write to the
// underlying writer per Write, so that records of two streams sharing it
// never interleave.
type Writer struct {
	w      io.Writer
	stream string
	now    func() time.Time
	buf    []byte
}

// NewWriter writes stream's ("stdout" or "stderr") output to w as records.
func NewWriter(w io.Writer, stream string) *Writer {
	return &Writer{w: w, stream: stream, now: time.Now}
}

// Write implements io.Writer: every line of p is a record (F), and what
// follows the last newline one more (P).
func (lw *Writer) Write(p []byte) (int, error) {
	ts := lw.now().UTC().Format(time.RFC3339Nano)
	b := lw.buf[:0]
	for rest := p; len(rest) > 0; {
		line, more, full := bytes.Cut(rest, []byte{'\n'})
		tag := " F "
		if !full {
			tag = " P "
		}
		b = append(append(append(append(append(b, ts...), ' '), lw.stream...), tag...), line...)
		b = append(b, '\n')
		rest = more
	}
	lw.buf = b
	if _, err := lw.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Line is one record read back: its text without the newline, and
// whether the line ends with it (F) or goes on in the next record (P).
// A line that is not a record (a file written before records) is its own
// text, complete, with a zero Time.
type Line struct {
	Time     time.Time
	Text     []byte
	Complete bool
}

// Parse reads one record (without its trailing newline).
func Parse(rec []byte) Line {
	ts, rest, ok := bytes.Cut(rec, []byte{' '})
	if !ok {
		return Line{Text: rec, Complete: true}
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return Line{Text: rec, Complete: true}
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || (string(stream) != "stdout" && string(stream) != "stderr") || len(rest) < 2 || rest[1] != ' ' || (rest[0] != 'F' && rest[0] != 'P') {
		return Line{Text: rec, Complete: true}
	}
	return Line{Time: t, Text: rest[2:], Complete: rest[0] == 'F'}
}

// Decoder reads records from a file that may be growing: a record not yet
// written to its end is kept until it is.
type Decoder struct {
	r     *bufio.Reader
	carry []byte
}

// NewDecoder reads records from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: bufio.NewReader(r)} }

// Next returns the next whole record, or io.EOF when there is none yet.
func (d *Decoder) Next() (Line, error) {
	b, err := d.r.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			d.carry = append(d.carry, b...)
		}
		return Line{}, err
	}
	if len(d.carry) > 0 {
		b = append(d.carry, b...)
		d.carry = nil
	}
	return Parse(b[:len(b)-1]), nil
}

// Options select what Copy writes.
type Options struct {
	Tail       int       // > 0: only the last Tail lines
	Since      time.Time // non-zero: only lines written at or after it
	Timestamps bool      // each line starts with its time (RFC3339Nano) and a space
}

// Printer writes lines as Options select them (but Tail, which needs
// them all: see Tail); a line that goes on over records is printed or
// skipped as one.
type Printer struct {
	w       io.Writer
	opts    Options
	midLine bool // the last record was P: the next one continues its line
	skip    bool // the line under way was written before Since
	buf     []byte
}

// NewPrinter prints to w.
func NewPrinter(w io.Writer, opts Options) *Printer { return &Printer{w: w, opts: opts} }

// Print writes one record's text.
func (p *Printer) Print(l Line) error {
	cont := p.midLine
	p.midLine = !l.Complete
	if !cont {
		p.skip = !p.opts.Since.IsZero() && !l.Time.IsZero() && l.Time.Before(p.opts.Since)
	}
	if p.skip {
		return nil
	}
	b := p.buf[:0]
	if p.opts.Timestamps && !cont {
		if l.Time.IsZero() {
			b = append(b, '-')
		} else {
			b = l.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		}
		b = append(b, ' ')
	}
	b = append(b, l.Text...)
	if l.Complete {
		b = append(b, '\n')
	}
	p.buf = b
	_, err := p.w.Write(b)
	return err
}

// Tail keeps the records of the last n lines (all when n <= 0); a last
// line that does not end yet counts as one.
func Tail(lines []Line, n int) []Line {
	if n <= 0 {
		return lines
	}
	ends := 0
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i].Complete || i == len(lines)-1 {
			if ends++; ends > n {
				return lines[i+1:]
			}
		}
	}
	return lines
}
