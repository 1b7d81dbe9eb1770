package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

// MaxInvokeAnswer caps the body of a function's answer an invocation
// returns; the rest is cut (body_truncated).
const MaxInvokeAnswer = 1 << 20

// invokeFunction calls a function with a body and returns its answer in a
// JSON document (coligo's addition, for the console): the request goes
// through the router as the project's own (Dispatch), so it reaches the
// function as a request to its URL would, and nothing of the answer is
// ever served as a page of the API's origin.
func (a *API) invokeFunction(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.FunctionInvocationPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.ContentType != "" && (len(in.ContentType) > 256 || strings.ContainsAny(in.ContentType, "\r\n")) {
		return core.Invalid("content_type", "must be a media type of at most 256 characters on one line")
	}
	_, fn, err := loadRecord[core.Function](a, r, core.Ref{Project: p.ID, Kind: core.KindFunction, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	note(r, func(n *auditNote) { n.project, n.name = p.ID, fn.Name })
	if a.cfg.Invoke == nil {
		return fmt.Errorf("functions are not served here: %w", core.ErrUnavailable)
	}
	host := core.AppHost(fn.Name, p, a.cfg.Domain)
	ctx, cancel := context.WithTimeout(r.Context(), WriteTimeout-5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+"/", strings.NewReader(in.Body))
	if err != nil {
		return err
	}
	req.Host, req.RemoteAddr, req.RequestURI = host, "127.0.0.1:0", ""
	if in.ContentType != "" {
		req.Header.Set("Content-Type", in.ContentType)
	}
	req.Header.Set("User-Agent", "coligo-console")
	start := time.Now()
	rec := &answer{header: http.Header{}}
	a.cfg.Invoke(rec, req, p.ID)
	out := api.FunctionInvocation{StatusCode: rec.code, ContentType: rec.header.Get("Content-Type"),
		DurationMilliseconds: time.Since(start).Milliseconds(), BodyTruncated: rec.cut}
	if out.StatusCode == 0 {
		out.StatusCode = http.StatusOK
	}
	if utf8.Valid(rec.body) {
		out.Body = string(rec.body)
	} else {
		out.Body, out.BodyBinary = strings.ToValidUTF8(string(rec.body), "\uFFFD"), true
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// answer keeps a dispatched request's answer, up to MaxInvokeAnswer bytes.
type answer struct {
	header http.Header
	code   int
	body   []byte
	cut    bool
}

func (a *answer) Header() http.Header { return a.header }

func (a *answer) WriteHeader(code int) {
	if a.code == 0 {
		a.code = code
	}
}

func (a *answer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	room := MaxInvokeAnswer - len(a.body)
	if len(b) > room {
		a.body, a.cut = append(a.body, b[:room]...), true
		return len(b), nil
	}
	a.body = append(a.body, b...)
	return len(b), nil
}

// Flush lets a streamed answer through.
func (a *answer) Flush() {}
