// Package logfmt is the format of an instance's log file on the local
// engine: one record per line, `<time RFC3339Nano> <stdout|stderr> <F|P>
// <text>`, as the CRI logging format writes it (P: the line goes on in the
// next record). Writer makes records of what a stream writes; Copy reads
// them back as the text that was written, selected (tail, since) and
// optionally timestamped as `kubectl logs --timestamps` shows it.
package logfmt
