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

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errors":[{"code":"internal_error","message":"encode response"}],"status_code":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
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

// DecodeJSON decodes one JSON object into v, rejecting unknown fields,
// wrong types, trailing data and duplicate keys.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("request body is empty; send a JSON object")
	}
	if err := checkDuplicateKeys(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("request body holds data after the JSON object")
	}
	return nil
}

func badRequest(msg string) error {
	return &apiError{status: http.StatusBadRequest, code: "bad_request", msg: msg}
}

func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest(fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error()))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest(fmt.Sprintf("request body must be a JSON object, not %s", te.Value))
		}
		return &apiError{status: http.StatusBadRequest, code: "invalid_" + fieldCode(strings.SplitN(field, ".", 2)[0]),
			msg: fmt.Sprintf("field %q must be of type %s, not %s", field, jsonType(te.Type.Kind().String()), te.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("malformed JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return &apiError{status: http.StatusBadRequest, code: "invalid_field", msg: fmt.Sprintf("unknown field %s", f)}
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

// checkDuplicateKeys rejects an object that names a key twice at any depth,
// which encoding/json would silently resolve to the last value.
func checkDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return nil // syntax errors are reported by the real decode
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil
				}
				k, _ := kt.(string)
				if seen[k] {
					return &apiError{status: http.StatusBadRequest, code: "invalid_" + fieldCode(strings.SplitN(path+k, ".", 2)[0]),
						msg: fmt.Sprintf("field %q appears more than once", path+k)}
				}
				seen[k] = true
				if err := walk(path + k + "."); err != nil {
					return err
				}
			}
			dec.Token()
		case '[':
			for dec.More() {
				if err := walk(path); err != nil {
					return err
				}
			}
			dec.Token()
		}
		return nil
	}
	return walk("")
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
func pageRefs(r *http.Request, limit int, next string) (*api.PageRef, *api.PageRef) {
	q := r.URL.Query()
	q.Del("start")
	q.Set("limit", strconv.Itoa(limit))
	first := &api.PageRef{Href: baseURL(r) + r.URL.Path + "?" + q.Encode()}
	if next == "" {
		return first, nil
	}
	tok := EncodeStart(next)
	q.Set("start", tok)
	return first, &api.PageRef{Href: baseURL(r) + r.URL.Path + "?" + q.Encode(), Start: tok}
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
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
