package apiserver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	kjson "sigs.k8s.io/json"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errors":[{"code":"internal_error","message":"encode response"}],"status_code":500}`)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b))) // complete once flushed (see handle)
	w.WriteHeader(status)
	w.Write(b)
}

func errorBody(status int, code, msg, trace string) api.ErrorResponse {
	return api.ErrorResponse{Errors: []api.ErrorItem{{Code: code, Message: msg}}, Trace: trace, StatusCode: status}
}

// decode reads a JSON body into v strictly: one object, no unknown fields, the
// right types. Its errors name the field and never quote values.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/merge-patch+json" && !strings.HasSuffix(mt, "+json")) {
			return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", msg: "Content-Type must be application/json"}
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	return DecodeJSON(body, v)
}

// MaxDepth caps how deeply a request body may nest objects and arrays. No
// field of the API nests deeper than a few levels; the cap is checked before
// anything walks the body, so a body of a million '[' costs one pass.
const MaxDepth = 64

// DecodeJSON decodes one JSON object into v strictly: keys match fields
// case-sensitively, unknown fields, duplicate keys at any depth, wrong types
// and trailing data are refused, and nothing nests deeper than MaxDepth.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("request body is empty; send a JSON object")
	}
	if err := checkDepth(body); err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(body, v)
	if err != nil {
		return decodeError(err)
	}
	if len(strict) > 0 {
		return strictError(strict[0])
	}
	return nil
}

// checkDepth refuses a body that nests deeper than MaxDepth, in one pass
// that keeps no stack: brackets inside strings do not count.
func checkDepth(body []byte) error {
	depth, inString, escaped := 0, false, false
	for i, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > MaxDepth {
				return badRequest(fmt.Sprintf("JSON nests deeper than %d levels at byte %d", MaxDepth, i))
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// strictError words a strict-mode finding (an unknown or duplicate field) as
// a 400 that names the field.
func strictError(err error) error {
	path := err.Error()
	var fe kjson.FieldError
	if errors.As(err, &fe) {
		path = fe.FieldPath()
	}
	code := "invalid_" + fieldCode(strings.SplitN(path, ".", 2)[0])
	if strings.HasPrefix(err.Error(), "unknown field") {
		return &apiError{status: http.StatusBadRequest, code: "invalid_field", msg: fmt.Sprintf("unknown field %q (field names are case-sensitive)", path)}
	}
	return &apiError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf("field %q appears more than once", path)}
}

func badRequest(msg string) error {
	return &apiError{status: http.StatusBadRequest, code: "bad_request", msg: msg}
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if ok, off := kjson.SyntaxErrorOffset(err); ok {
		if strings.Contains(err.Error(), "unexpected end") {
			return badRequest("malformed JSON: unexpected end of input")
		}
		if strings.Contains(err.Error(), "after top-level value") {
			return badRequest("request body holds data after the JSON object")
		}
		return badRequest(fmt.Sprintf("malformed JSON at byte %d: %s", off, err.Error()))
	}
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest(fmt.Sprintf("request body must be a JSON object, not %s", te.Value))
		}
		return &apiError{status: http.StatusBadRequest, code: "invalid_" + fieldCode(strings.SplitN(field, ".", 2)[0]),
			msg: fmt.Sprintf("field %q must be of type %s, not %s", field, jsonType(te.Type.Kind().String()), te.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("malformed JSON: unexpected end of input")
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return badRequest("malformed JSON: " + err.Error())
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return "number"
}

// page is a parsed limit/start pair.
type page struct {
	limit int
	start string // decoded start token
}

// parsePage reads limit (1–100, default 50) and start.
func parsePage(q url.Values) (page, error) {
	p := page{limit: 50}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return p, &apiError{status: http.StatusBadRequest, code: "invalid_limit", msg: "limit must be a whole number from 1 to 100"}
		}
		p.limit = n
	}
	if s := q.Get("start"); s != "" {
		b, err := DecodeStart(s)
		if err != nil {
			return p, err
		}
		p.start = b
	}
	return p, nil
}

// EncodeStart makes an opaque start token of a list position.
func EncodeStart(pos string) string { return base64.RawURLEncoding.EncodeToString([]byte(pos)) }

// DecodeStart reads a start token made by EncodeStart.
func DecodeStart(s string) (string, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	// Only the canonical encoding is a token we made (the decoder skips
	// newlines and would accept other spellings).
	if err != nil || len(b) == 0 || len(b) > 512 || EncodeStart(string(b)) != s {
		return "", &apiError{status: http.StatusBadRequest, code: "invalid_start", msg: "start is not a token from a previous list response"}
	}
	return string(b), nil
}

// pageRefs builds first and next for a list response.
func (a *API) pageRefs(r *http.Request, limit int, next string) (*api.PageRef, *api.PageRef) {
	q := r.URL.Query()
	q.Del("start")
	q.Set("limit", strconv.Itoa(limit))
	first := &api.PageRef{Href: a.linkBase + r.URL.Path + "?" + q.Encode()}
	if next == "" {
		return first, nil
	}
	tok := EncodeStart(next)
	q.Set("start", tok)
	return first, &api.PageRef{Href: a.linkBase + r.URL.Path + "?" + q.Encode(), Start: tok}
}

// ifMatch reads the If-Match header: 0 for "*", errPreconditionRequired when
// missing, and a 412 for a tag that cannot match.
func ifMatch(r *http.Request) (uint64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return 0, errPreconditionRequired
	}
	if h == "*" {
		return 0, nil
	}
	h = strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	v, err := strconv.ParseUint(h, 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("if-match %q: %w", clipTag(h), core.ErrConflict)
	}
	return v, nil
}

func clipTag(s string) string {
	if len(s) > 32 {
		return s[:32]
	}
	return s
}

func etag(v uint64) string { return strconv.FormatUint(v, 10) }

func setETag(w http.ResponseWriter, v uint64) { w.Header().Set("ETag", `"`+etag(v)+`"`) }

func rfc3339(t interface{ Format(string) string }) string {
	return t.Format("2006-01-02T15:04:05Z07:00")
}
