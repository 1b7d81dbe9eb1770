package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/auth"
	"github.com/coligo/coligo/internal/core"
)

func (a *API) tokenView(t core.Token) api.Token {
	return api.Token{ID: t.ID, Name: t.Name, ProjectID: t.ProjectID, Role: string(t.Role),
		CreatedAt: rfc3339(t.CreatedAt), Href: a.linkBase + "/v2/tokens/" + t.ID, ResourceType: "token_v2"}
}

// createToken mints a token: any token for an admin, a project token of at
// most manager for the manager of that project.
func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	// The role is checked before the body is read: a caller who may not
	// create tokens gets nothing parsed on its behalf.
	pr := principal(r)
	if !pr.Admin() && !pr.Role.AtLeast(core.RoleManager) {
		return fmt.Errorf("only a manager may create tokens: %w", core.ErrForbidden)
	}
	var in api.TokenPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.ProjectID == "" && !pr.Admin() {
		in.ProjectID = pr.ProjectID // a manager's tokens are for its project
	}
	if in.ProjectID != "" {
		p, err := a.projectByID(r, in.ProjectID, core.RoleManager)
		if err != nil {
			return err
		}
		if !p.Usable() {
			return fmt.Errorf("project %s is %s: %w", p.Name, p.Status, core.ErrNotActive)
		}
	}
	t, value, err := auth.Mint(r.Context(), a.cfg.Store, in.Name, in.ProjectID, core.Role(in.Role))
	if err != nil {
		return err
	}
	note(r, func(n *auditNote) { n.project, n.target = t.ProjectID, t.ID })
	a.log.Info("token created", "token", t.ID, "project", t.ProjectID, "role", t.Role, "by", pr.TokenID)
	out := a.tokenView(t)
	out.Token = value
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// projectByID authorizes need in project id and loads it.
func (a *API) projectByID(r *http.Request, id string, need core.Role) (core.Project, error) {
	if err := auth.Authorize(principal(r), id, need); err != nil {
		return core.Project{}, err
	}
	if !core.IsUUID(id) {
		return core.Project{}, core.Invalid("project_id", "must be a project id")
	}
	return a.cfg.Store.GetProject(r.Context(), id)
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) error {
	pr := principal(r)
	if !pr.Role.AtLeast(core.RoleManager) {
		return fmt.Errorf("only a manager may list tokens: %w", core.ErrForbidden)
	}
	all, err := a.cfg.Store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(x, y core.Token) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	out := api.TokenList{Tokens: []api.Token{}}
	for _, t := range all {
		if t.Kind == "" && (pr.Admin() || t.ProjectID == pr.ProjectID) {
			out.Tokens = append(out.Tokens, a.tokenView(t))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) error {
	pr := principal(r)
	id := r.PathValue("id")
	note(r, func(n *auditNote) { n.target = id })
	all, err := a.cfg.Store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(t core.Token) bool { return t.ID == id })
	if i < 0 {
		return fmt.Errorf("token: %w", core.ErrNotFound)
	}
	if !pr.Admin() {
		if all[i].ProjectID != pr.ProjectID || all[i].ProjectID == "" {
			return fmt.Errorf("token: %w", core.ErrNotFound)
		}
		if !pr.Role.AtLeast(core.RoleManager) {
			return fmt.Errorf("only a manager may revoke tokens: %w", core.ErrForbidden)
		}
	}
	if all[i].Kind != "" {
		return fmt.Errorf("token: %w", core.ErrNotFound) // an exchange's: it goes with its parent
	}
	note(r, func(n *auditNote) { n.project, n.target = all[i].ProjectID, id })
	if err := a.cfg.Store.DeleteToken(r.Context(), id); err != nil {
		return err
	}
	for _, t := range all {
		if t.Parent == id {
			if err := a.cfg.Store.DeleteToken(r.Context(), t.ID); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	a.log.Info("token revoked", "token", id, "by", pr.TokenID)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// iamRoute is the token exchange of IBM Cloud IAM, which Code Engine's
// SDKs call with an API key before anything else.
const iamRoute = "POST /identity/token"

// iamToken trades an API key (a coligo token) or a refresh token for an
// access token of the same identity, as IAM does: a form body in, its JSON
// out, its error shape on failure. It authenticates by the form, so it
// records its own audit event.
func (a *API) iamToken(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return iamError(w, http.StatusBadRequest, "BXNIM0109E", "The request is not a form (application/x-www-form-urlencoded).")
	}
	now := a.cfg.Now()
	var parent core.Token
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "urn:ibm:params:oauth:grant-type:apikey":
		t, err := auth.Lookup(r.Context(), a.cfg.Store, r.PostForm.Get("apikey"), now)
		if err != nil || t.Kind != "" {
			return iamError(w, http.StatusBadRequest, "BXNIM0415E", "Provided API key could not be found.")
		}
		parent = t
	case "refresh_token":
		t, err := auth.Lookup(r.Context(), a.cfg.Store, r.PostForm.Get("refresh_token"), now)
		if err != nil || t.Kind != core.TokenRefresh {
			return iamError(w, http.StatusBadRequest, "BXNIM0407E", "Provided refresh token is not valid.")
		}
		all, err := a.cfg.Store.ListTokens(r.Context())
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(p core.Token) bool { return p.ID == t.Parent })
		if i < 0 {
			return iamError(w, http.StatusBadRequest, "BXNIM0407E", "Provided refresh token is not valid.")
		}
		parent = all[i]
	default:
		return iamError(w, http.StatusBadRequest, "BXNIM0104E", fmt.Sprintf("Unsupported grant_type %q: use urn:ibm:params:oauth:grant-type:apikey or refresh_token.", clipTag(grant)))
	}
	if err := a.dropExpired(r, parent.ID, now); err != nil {
		return err
	}
	access, refresh, exp, err := auth.Exchange(r.Context(), a.cfg.Store, parent, now)
	if err != nil {
		return err
	}
	p := auth.Principal{TokenID: parent.ID, Role: parent.Role, ProjectID: parent.ProjectID}
	if err := a.audit(r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), "token.exchange", "token", parent.ProjectID, parent.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.IAMToken{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int(auth.AccessLife.Seconds()), Expiration: exp.Unix(), Scope: "ibm openid"})
	return nil
}

// maxExchanged bounds the tokens the exchanges of one key hold at once:
// an SDK exchanges its key about hourly, and a caller that does so in a
// loop drops its own oldest tokens, not the store's room.
const maxExchanged = 20

// dropExpired removes the expired tokens earlier exchanges of parent made,
// and its oldest beyond maxExchanged-2 (room for the exchange to come).
func (a *API) dropExpired(r *http.Request, parent string, now time.Time) error {
	all, err := a.cfg.Store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	var live []core.Token
	for _, t := range all {
		if t.Parent != parent {
			continue
		}
		if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
			if err := a.cfg.Store.DeleteToken(r.Context(), t.ID); err != nil && !isNotFound(err) {
				return err
			}
			continue
		}
		live = append(live, t)
	}
	slices.SortFunc(live, func(x, y core.Token) int { return x.CreatedAt.Compare(y.CreatedAt) })
	for len(live) > maxExchanged-2 {
		if err := a.cfg.Store.DeleteToken(r.Context(), live[0].ID); err != nil && !isNotFound(err) {
			return err
		}
		live = live[1:]
	}
	return nil
}

// iamError answers as IAM does when it refuses.
func iamError(w http.ResponseWriter, code int, errorCode, msg string) error {
	writeJSON(w, code, api.IAMError{ErrorCode: errorCode, ErrorMessage: msg})
	return nil
}
