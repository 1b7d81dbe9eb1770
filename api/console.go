package api

// ConsoleSession is what the web console learns of its session (coligo's
// addition, at /console/session): the CSRF token its requests that change
// something carry in X-CSRF-Token, and the role it acts with. The session
// itself is an HttpOnly cookie no script reads.
type ConsoleSession struct {
	CSRFToken string `json:"csrf_token"`
	Role      string `json:"role"`
	ProjectID string `json:"project_id,omitempty"`
	TokenID   string `json:"token_id"`
	ExpiresAt string `json:"expires_at"`
}
