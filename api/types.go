package api

// Resource types, as Code Engine names them.
const (
	ResourceTypeProject   = "project_v2"
	ResourceTypeConfigMap = "config_map_v2"
)

// SecretResourceType returns the resource_type of a secret of format.
func SecretResourceType(format string) string {
	switch format {
	case "generic":
		return "secret_generic_v2"
	case "ssh_auth":
		return "secret_auth_ssh_v2"
	case "basic_auth":
		return "secret_basic_auth_v2"
	case "hmac_auth":
		return "secret_hmac_auth_v2"
	case "registry":
		return "secret_registry_v2"
	case "tls":
		return "secret_tls_v2"
	}
	return "secret_v2"
}

// PageRef points at a page of a list.
type PageRef struct {
	Href  string `json:"href"`
	Start string `json:"start,omitempty"`
}

// ProjectPrototype is the body of POST /projects.
type ProjectPrototype struct {
	Name            string               `json:"name"`
	ResourceGroupID string               `json:"resource_group_id,omitempty"`
	Tags            []string             `json:"tags,omitempty"`
	Encryption      *EncryptionPrototype `json:"encryption,omitempty"`
}

// EncryptionPrototype chooses the key that wraps a new project's data key.
type EncryptionPrototype struct {
	Provider string `json:"provider,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
}

// Encryption shows which key wraps a project's data key (coligo's addition).
type Encryption struct {
	Provider     string `json:"provider"`
	KeyID        string `json:"key_id"`
	KeyVersion   int    `json:"key_version"`
	DEKCreatedAt string `json:"dek_created_at"`
}

// Project is a Code Engine project.
type Project struct {
	AccountID       string      `json:"account_id"`
	CreatedAt       string      `json:"created_at"`
	CRN             string      `json:"crn"`
	Href            string      `json:"href"`
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	Region          string      `json:"region"`
	ResourceGroupID string      `json:"resource_group_id"`
	ResourceType    string      `json:"resource_type"`
	Status          string      `json:"status"`
	EntityTag       string      `json:"entity_tag"`
	Subdomain       string      `json:"subdomain,omitempty"`
	Encryption      *Encryption `json:"encryption,omitempty"`
	DeletedAt       string      `json:"deleted_at,omitempty"`
	HardDeleteAt    string      `json:"hard_delete_at,omitempty"`
}

// ProjectList is a page of projects.
type ProjectList struct {
	Limit    int       `json:"limit"`
	First    *PageRef  `json:"first,omitempty"`
	Next     *PageRef  `json:"next,omitempty"`
	Projects []Project `json:"projects"`
}

// ProjectStatusDetails is GET /projects/{id}/status_details.
type ProjectStatusDetails struct {
	Project       string     `json:"project"`
	Domain        string     `json:"domain"`
	VPE           string     `json:"vpe"`
	VPENotEnabled bool       `json:"vpe_not_enabled"`
	CBR           CBRDetails `json:"cbr"`
}

// CBRDetails is the state of context-based restrictions on workload traffic.
type CBRDetails struct {
	DataPlane CBRDataPlane `json:"data_plane"`
}

// CBRDataPlane is what context-based restrictions do to inbound traffic.
type CBRDataPlane struct {
	Enforcement    string `json:"enforcement"`
	InboundPublic  string `json:"inbound_public"`
	InboundPrivate string `json:"inbound_private"`
}

// SecretPrototype is the body of POST /projects/{id}/secrets.
type SecretPrototype struct {
	Name   string            `json:"name"`
	Format string            `json:"format"`
	Data   map[string]string `json:"data,omitempty"`
}

// SecretReplace is the body of PUT /projects/{id}/secrets/{name}.
type SecretReplace struct {
	Format string            `json:"format"`
	Data   map[string]string `json:"data,omitempty"`
}

// Secret is a secret. Data holds values only in the response to a get of one
// secret by a role that may read them; elsewhere each value is "REDACTED".
type Secret struct {
	CreatedAt    string            `json:"created_at"`
	Data         map[string]string `json:"data,omitempty"`
	EntityTag    string            `json:"entity_tag"`
	Format       string            `json:"format"`
	GeneratedBy  string            `json:"generated_by"`
	Href         string            `json:"href"`
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	ProjectID    string            `json:"project_id"`
	Region       string            `json:"region"`
	ResourceType string            `json:"resource_type"`
}

// SecretList is a page of secrets; it never holds values.
type SecretList struct {
	Limit   int      `json:"limit"`
	First   *PageRef `json:"first,omitempty"`
	Next    *PageRef `json:"next,omitempty"`
	Secrets []Secret `json:"secrets"`
}

// ConfigMapPrototype is the body of POST /projects/{id}/config_maps.
type ConfigMapPrototype struct {
	Name string            `json:"name"`
	Data map[string]string `json:"data,omitempty"`
}

// ConfigMapReplace is the body of PUT /projects/{id}/config_maps/{name}.
type ConfigMapReplace struct {
	Data map[string]string `json:"data,omitempty"`
}

// ConfigMap is a config map.
type ConfigMap struct {
	CreatedAt    string            `json:"created_at"`
	Data         map[string]string `json:"data,omitempty"`
	EntityTag    string            `json:"entity_tag"`
	Href         string            `json:"href"`
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	ProjectID    string            `json:"project_id"`
	Region       string            `json:"region"`
	ResourceType string            `json:"resource_type"`
}

// ConfigMapList is a page of config maps.
type ConfigMapList struct {
	Limit      int         `json:"limit"`
	First      *PageRef    `json:"first,omitempty"`
	Next       *PageRef    `json:"next,omitempty"`
	ConfigMaps []ConfigMap `json:"config_maps"`
}

// TokenPrototype is the body of POST /tokens (coligo's addition).
type TokenPrototype struct {
	Name      string `json:"name"`
	ProjectID string `json:"project_id,omitempty"`
	Role      string `json:"role"`
}

// Token is an access token. Token is set only in the response to its create.
type Token struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ProjectID    string `json:"project_id,omitempty"`
	Role         string `json:"role"`
	CreatedAt    string `json:"created_at"`
	Href         string `json:"href"`
	ResourceType string `json:"resource_type"`
	Token        string `json:"token,omitempty"`
}

// TokenList lists tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// ErrorItem is one error of an error response.
type ErrorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorResponse is the body of every error response.
type ErrorResponse struct {
	Errors     []ErrorItem `json:"errors"`
	Trace      string      `json:"trace"`
	StatusCode int         `json:"status_code"`
}

// IAMToken is the answer of POST /identity/token, as IBM Cloud IAM's.
type IAMToken struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Expiration   int64  `json:"expiration"`
	Scope        string `json:"scope"`
}

// IAMError is IAM's refusal.
type IAMError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}
