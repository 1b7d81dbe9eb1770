package router

import "bytes"

// The heads the router's own HTTP/1.1 core (core.go) parses: a request
// from a client and a response from an instance. Both parsers accept only
// the plain shape of the common case, strictly (CRLF line ends, one
// Content-Length, no Transfer-Encoding, no folded lines, no control bytes);
// anything else is not refused here but left to net/http, which parses
// every other shape and refuses the bad ones. So the core never guesses at
// a request's framing, and a request cannot be read one way here and
// another way by the instance (request smuggling).

// maxHeaderLines is the most header lines a head the core parses may have.
const maxHeaderLines = 64

// lineKind is what the core does with a header line.
type lineKind uint8

const (
	lineCopy lineKind = iota // forwarded as it is
	lineSkip                 // hop-by-hop, or rewritten by the router
	lineXFF                  // X-Forwarded-For: its value is kept and extended
)

// span is a header line within a head: [start, end) without its CRLF, and
// its value (without the white space around it) [val, vend).
type span struct {
	start, val, vend, end int32
	kind                  lineKind
}

// requestHead is a parsed request head; its byte slices point into the
// buffer it was parsed from.
type requestHead struct {
	method, target, host []byte
	contentLength        int64 // 0 when absent
	close                bool  // Connection: close
	lines                []span
}

// responseHead is a parsed response head.
type responseHead struct {
	status        int
	statusLine    []byte // "HTTP/1.1 200 OK", without CRLF
	contentLength int64  // -1 when absent
	close         bool
	date          bool // has a Date header
	lines         []span
}

// headEnd returns the length of the head at the start of b (through its
// blank line), 0 when b holds no whole head yet, and -1 when the head uses
// bare LF line ends, which the core leaves to net/http.
func headEnd(b []byte) int {
	i := bytes.Index(b, []byte("\n\r\n"))
	j := bytes.Index(b, []byte("\n\n"))
	switch {
	case j >= 0 && (i < 0 || j < i):
		return -1
	case i < 0:
		return 0
	}
	return i + 3
}

// parseRequestHead parses the head of a request (b ends with its blank
// line) into h, reusing h.lines. It reports false when the request is not
// of the plain shape the core serves.
func parseRequestHead(b []byte, h *requestHead) bool {
	line, rest, ok := cutLine(b)
	if !ok {
		return false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 20 || !isToken(line[:sp]) {
		return false
	}
	h.method = line[:sp]
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 || line[0] != '/' || string(line[sp+1:]) != "HTTP/1.1" {
		return false // not origin-form, or not HTTP/1.1 (HTTP/1.0, h2c's preface)
	}
	for _, c := range line[:sp] {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	h.target, h.host, h.contentLength, h.close = line[:sp], nil, 0, false
	hosts, lengths := 0, 0
	var whole bool
	h.lines, whole = headerLines(rest, len(b)-len(rest), h.lines[:0], func(name, value []byte) (lineKind, bool) {
		switch {
		case equalFold(name, "host"):
			hosts++
			h.host = value
			return lineSkip, validHost(value)
		case equalFold(name, "content-length"):
			lengths++
			n, ok := parseLength(value)
			h.contentLength = n
			return lineSkip, ok
		case equalFold(name, "connection"):
			c, ok := connectionClose(value) // not ok: it names other headers, or asks for an upgrade
			h.close = h.close || c
			return lineSkip, ok
		case equalFold(name, "transfer-encoding"), equalFold(name, "upgrade"), equalFold(name, "expect"), equalFold(name, "http2-settings"):
			return 0, false
		case equalFold(name, "x-forwarded-for"):
			return lineXFF, true
		case hopByHop(name), equalFold(name, "x-forwarded-host"), equalFold(name, "x-forwarded-proto"):
			return lineSkip, true
		}
		return lineCopy, true
	})
	return whole && hosts == 1 && lengths <= 1
}

// parseResponseHead parses the head of an instance's response into h. It
// reports false when the response is not of the plain shape the core
// copies itself (a chunked or close-delimited body, HTTP/1.0, a Connection
// header naming others): net/http reads those.
func parseResponseHead(b []byte, h *responseHead) bool {
	line, rest, ok := cutLine(b)
	if !ok || len(line) < 12 || string(line[:9]) != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return false
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return false
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return false
	}
	for _, c := range line[min(len(line), 13):] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	h.status, h.statusLine, h.contentLength, h.close, h.date = code, line, -1, false, false
	h.lines, ok = headerLines(rest, len(b)-len(rest), h.lines[:0], func(name, value []byte) (lineKind, bool) {
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			ok = ok && h.contentLength < 0
			h.contentLength = n
			return lineCopy, ok
		case equalFold(name, "connection"):
			c, ok := connectionClose(value)
			h.close = h.close || c
			return lineSkip, ok
		case equalFold(name, "transfer-encoding"):
			return 0, false
		case equalFold(name, "date"):
			h.date = true
		case hopByHop(name):
			return lineSkip, true
		}
		return lineCopy, true
	})
	return ok
}

// headerLines walks the header lines of a head (rest, which starts at base
// within it, up to and with its blank line), appending to lines each
// line's span with the kind classify gives it; classify's false, a line
// that is not a plain header line, too many lines or bytes after the blank
// line refuse the head.
func headerLines(rest []byte, base int, lines []span, classify func(name, value []byte) (lineKind, bool)) ([]span, bool) {
	for {
		line, r, ok := cutLine(rest)
		if !ok || len(lines) == maxHeaderLines {
			return lines, false
		}
		rest = r
		if len(line) == 0 {
			return lines, len(rest) == 0
		}
		name, value, ok := headerLine(line)
		if !ok {
			return lines, false
		}
		kind, ok := classify(name, value)
		if !ok {
			return lines, false
		}
		lines = append(lines, lineSpan(base, line, value, kind))
		base += len(line) + 2
	}
}

// bodyless reports whether a response to method with status code has no
// body whatever its headers say (RFC 9112 6.3).
func bodyless(method []byte, code int) bool {
	return string(method) == "HEAD" || code < 200 || code == 204 || code == 304
}

// cutLine cuts the CRLF-ended line at the start of b.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// headerLine splits a header line into its name and its value without the
// white space around it; a folded line, a name that is not a token or a
// value with control bytes is refused.
func headerLine(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return nil, nil, false
	}
	value = line[colon+1:]
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	value = value[:len(value)-trailingWS(value)]
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, false
		}
	}
	return line[:colon], value, true
}

// lineSpan is the span of line, at base within its head, whose value is
// value (a slice of line).
func lineSpan(base int, line, value []byte, kind lineKind) span {
	val := base + len(line) - len(value)
	if len(value) > 0 {
		val = base + cap(line) - cap(value)
	}
	return span{start: int32(base), val: int32(val), vend: int32(val + len(value)), end: int32(base + len(line)), kind: kind}
}

func trailingWS(b []byte) int {
	n := 0
	for n < len(b) && (b[len(b)-1-n] == ' ' || b[len(b)-1-n] == '\t') {
		n++
	}
	return n
}

// hopByHop reports the headers of one hop that a proxy does not forward
// (RFC 9110 7.6.1) and that the core handles no further.
func hopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 7:
		return equalFold(name, "trailer") || equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "keep-alive")
	case 16:
		return equalFold(name, "proxy-connection")
	case 18:
		return equalFold(name, "proxy-authenticate")
	case 19:
		return equalFold(name, "proxy-authorization")
	}
	return false
}

// connectionClose reads a Connection header that names only keep-alive or
// close; ok is false when it names anything else.
func connectionClose(v []byte) (close, ok bool) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.Trim(tok, " \t")
		switch {
		case len(tok) == 0 || equalFold(tok, "keep-alive"):
		case equalFold(tok, "close"):
			close = true
		default:
			return false, false
		}
	}
	return close, true
}

// parseLength parses a Content-Length value: digits only, at most 18.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validHost reports a Host value of the plain shape: a name or address and
// an optional port. Others (empty, user info, odd bytes) go to net/http.
func validHost(v []byte) bool {
	if len(v) == 0 || len(v) > 255 {
		return false
	}
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// routeHost lowers host into dst and drops its port, as ServeHTTP does
// with net.SplitHostPort.
func routeHost(dst, host []byte) []byte {
	dst = dst[:0]
	for _, c := range host {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	if len(dst) > 0 && dst[0] == '[' {
		if i := bytes.IndexByte(dst, ']'); i > 0 && (i == len(dst)-1 || dst[i+1] == ':' && bytes.IndexByte(dst[i+2:], ':') < 0) {
			if i < len(dst)-1 {
				return dst[1:i]
			}
		}
		return dst
	}
	if i := bytes.IndexByte(dst, ':'); i >= 0 && bytes.IndexByte(dst[i+1:], ':') < 0 {
		return dst[:i]
	}
	return dst
}

// isToken reports an RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// equalFold compares an ASCII name with a lower-case one, ignoring case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
