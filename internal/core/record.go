package core

// Record kinds of project-scoped records.
const (
	KindProject   = "project"
	KindSecret    = "secret"
	KindConfigMap = "config_map"
	KindJob       = "job"
	KindJobRun    = "job_run"
	KindApp       = "app"
	KindRevision  = "revision"
)

// Ref names one project-scoped record: its location, which its sealing binds.
type Ref struct {
	Project string
	Kind    string
	Name    string
}

// AAD is the additional authenticated data that binds a sealed value to its
// location.
func (r Ref) AAD() []byte { return []byte(r.Project + "/" + r.Kind + "/" + r.Name) }

// Record is a record's plaintext value with its version (the entity tag).
type Record struct {
	Ref
	Version uint64
	Value   []byte
}
