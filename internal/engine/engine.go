package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Engine runs instances. Every method is safe for concurrent use.
//
// Instances are named by Spec.ID, unique within a project. Run is idempotent:
// running an ID that exists returns the existing instance. Instances outlive
// the coligo process; after a restart List shows them as they are, and
// Events reports exits from then on.
type Engine interface {
	// Pull resolves image in its registry (with auth) now, fetches what the
	// project does not have yet, keeps it unpacked and returns the reference
	// pinned to the digest it resolved to ("name@sha256:…"), which Run then
	// starts without asking the registry again. A failure is a *PullError.
	Pull(ctx context.Context, project, image string, auth *RegistryAuth) (string, error)
	// Run pulls the image (with spec.Auth) unless the project has it,
	// creates the instance and starts it. A pull failure is a *PullError.
	Run(ctx context.Context, spec Spec) (Instance, error)
	// Prepare does all that Run does but start the process: image, container,
	// network and a created task, so that a Run of the same ID later only
	// starts the process. A prepared instance is listed as StateCreated.
	Prepare(ctx context.Context, spec Spec) (Instance, error)
	// Stop sends SIGTERM, waits up to grace, then SIGKILL. Stopping an
	// instance that is not running is not an error; core.ErrNotFound
	// (wrapped) when there is no such instance.
	Stop(ctx context.Context, project, id string, grace time.Duration) error
	// Remove deletes a stopped instance with its logs and network
	// allocation. Removing a missing instance is not an error.
	Remove(ctx context.Context, project, id string) error
	// List returns the project's instances whose labels include match.
	List(ctx context.Context, project string, match map[string]string) ([]Instance, error)
	// Logs writes an instance's output (stdout and stderr) to w, as opts
	// select it; with opts.Follow it keeps writing until the instance exits
	// or ctx ends.
	Logs(ctx context.Context, project, id string, w io.Writer, opts LogOptions) error
	// Events reports instance exits until ctx ends.
	Events(ctx context.Context) (<-chan Event, error)
	// PruneImages removes the project's cached images that no instance uses
	// and whose reference is not in keep (as given to Run). It returns the
	// references it removed.
	PruneImages(ctx context.Context, project string, keep []string) ([]string, error)
	// ProjectNetwork sets up the project's network if it is not yet and
	// makes each of names resolve, inside the project's instances, to the
	// gateway: the host's address on that network, where coligo serves the
	// project's internal endpoints. It returns the gateway and the subnet of
	// the project's instances. Names replace those of the previous call.
	ProjectNetwork(ctx context.Context, project string, names []string) (gateway netip.Addr, subnet netip.Prefix, err error)
	// Purge stops and removes every instance, image reference, network
	// allocation and log of a project. It is idempotent.
	Purge(ctx context.Context, project string) error
}

// FileUpdater is implemented by an engine that can replace a file of a
// running (or prepared) instance's mount in place: the instance sees the
// new content at once, without a restart.
type FileUpdater interface {
	// UpdateFile replaces file name of the mount at dir (as in Spec.Mounts)
	// of instance id; the file must be there already.
	UpdateFile(ctx context.Context, project, id, dir, name string, data []byte) error
}

// Arrays is implemented by an engine that runs a job run's instances as one
// object of its own, which starts, limits and retries them (on Kubernetes,
// an Indexed Job). The job run controller then hands a run to RunArray and
// follows its instances through List and Events as it does its own: the
// instance of index i at retry r is named core.InstanceName(run, i, r) and
// labelled with IndexLabel=i and RetryLabel=r.
type Arrays interface {
	// RunArray creates the array unless it exists, and resumes it if it
	// was stopped. It checks the image with its registry first: a pull
	// failure is a *PullError.
	RunArray(ctx context.Context, a Array) error
	// StopArray stops the array's running instances and starts no more.
	StopArray(ctx context.Context, project, name string) error
	// RemoveArray removes the array with its instances, their logs and
	// files. Removing a missing array is not an error.
	RemoveArray(ctx context.Context, project, name string) error
}

// Array is a job run for an engine that implements Arrays.
type Array struct {
	Name     string // the job run's name, unique within the project
	Project  string
	Template Spec  // every instance's spec; its ID is unused
	Indices  []int // the JOB_INDEX of each instance, in order (gaps allowed)
	// Parallelism is how many instances run at once, RetryLimit how often
	// an index is retried (Daemon: without limit) and Deadline how long the
	// run may take (0: no limit).
	Parallelism int
	RetryLimit  int
	Daemon      bool
	Deadline    time.Duration
	// IndexLabel and RetryLabel are the labels an instance carries its
	// index and retry count in. The engine sets the instance's JOB_INDEX,
	// JOB_INDEX_RETRY_COUNT and HOSTNAME (its name).
	IndexLabel, RetryLabel string
}

// Spec is what to run.
type Spec struct {
	ID      string // instance name, unique within the project
	Project string // project id
	Image   string // image reference, e.g. registry.example.com/ns/app:1
	Auth    *RegistryAuth
	Command []string // replaces the image's entrypoint when set
	Args    []string // replaces the image's arguments when set
	Env     []string // KEY=VALUE
	UID     int      // user the process runs as; 0 keeps the image's user
	// MilliCPU, MemoryBytes and EphemeralBytes are limits; 0 means none.
	MilliCPU       int64
	MemoryBytes    int64
	EphemeralBytes int64
	Labels         map[string]string
	// Set groups instances that differ only in their ID (an app
	// revision's): an engine may run them as one scalable object, on
	// Kubernetes a ReplicaSet whose replica count follows Run and Stop.
	Set string
	// Mounts are directories of files mounted read-only into the instance
	// (a secret or config map as one file per key). The engine keeps them
	// in memory-backed storage where the host has it and removes them with
	// the instance.
	Mounts []Mount
	// Buckets are object storage buckets mounted into the instance (its
	// persistent data stores).
	Buckets []Bucket
}

// Bucket is a bucket of an S3-compatible object store to mount into an
// instance.
type Bucket struct {
	Dir      string // absolute path in the instance
	Endpoint string // the store's URL, e.g. https://s3.eu-de.example.com
	Name     string // the bucket
	SubPath  string // only the objects under this prefix; "" all
	ReadOnly bool
	// AccessKeyID and SecretAccessKey are the HMAC credentials.
	AccessKeyID, SecretAccessKey string
}

// MountFailed is the reason of an instance whose persistent data store
// could not be mounted: the bucket, its sub_path or the credentials are
// wrong, or the store does not answer.
const MountFailed = "persistent_data_store_mount_failed"

// MountError is a bucket an instance could not mount; its message names
// the bucket and says what went wrong in the mount client's words.
type MountError struct {
	Bucket string
	Err    error
}

func (e *MountError) Error() string { return fmt.Sprintf("mount bucket %s: %v", e.Bucket, e.Err) }
func (e *MountError) Unwrap() error { return e.Err }

// Mount is a directory of files to mount into an instance.
type Mount struct {
	Dir   string            // absolute path in the instance
	Files map[string][]byte // file name → content
}

// RegistryAuth is pull credentials for one registry server.
type RegistryAuth struct {
	Server   string
	Username string
	Password string
}

// State is an instance's state.
type State string

const (
	StateCreated State = "created" // created, not started
	StateRunning State = "running"
	StateExited  State = "exited"
)

// Instance is an instance as the engine observes it.
type Instance struct {
	ID         string
	Project    string
	Labels     map[string]string
	State      State
	ExitCode   int
	OOMKilled  bool
	Evicted    string // why the engine ended it, e.g. EvictedEphemeralStorage
	IP         string
	CreatedAt  time.Time
	FinishedAt time.Time
}

// Event reports that an instance exited.
type Event struct {
	Project   string
	ID        string
	ExitCode  int
	OOMKilled bool
	At        time.Time
}

// EvictedEphemeralStorage is the Evicted reason of an instance that wrote
// more than its ephemeral storage limit: the engine killed it.
const EvictedEphemeralStorage = "ephemeral_storage"

// ErrNoCommand is returned (wrapped) by Run when the instance's command
// does not exist in its image: trying again cannot help.
var ErrNoCommand = errors.New("the command is not in the image")

// ErrUnavailable is returned (wrapped) when the engine itself cannot be
// reached (containerd restarts): what asked may ask again, nothing of the
// workload is at fault.
var ErrUnavailable = errors.New("the engine is unavailable")

// ErrNotSupported is returned (wrapped) by a method the engine cannot do
// (Prepare on Kubernetes, where a pod cannot be created without starting).
var ErrNotSupported = errors.New("not supported by this engine")

// Pull failure reasons, as Code Engine names them.
const (
	PullUnauthorized = "fetch_image_failed_wrong_pull_credentials"
	PullMissingAuth  = "fetch_image_failed_missing_pull_credentials"
	PullNotFound     = "fetch_image_failed_unknown_manifest"
	PullUnreachable  = "fetch_image_failed_registry_not_found"
	PullFailed       = "image_pull_back_off"
	// PullNotAllowed is coligo's: the registry's address points at this
	// host or the link-local range, and the operator did not name it.
	PullNotAllowed = "fetch_image_failed_registry_not_allowed"
)

// PullMessage describes a pull failure in fixed words. A registry's own
// answer never reaches a user's status: it is whatever the server an image
// reference names chose to say, which may be one the user should not read.
func PullMessage(reason string) string {
	switch reason {
	case PullUnauthorized:
		return "the registry refused the pull credentials of image_secret"
	case PullMissingAuth:
		return "the registry asks for credentials: set image_secret to a registry secret"
	case PullNotFound:
		return "the registry has no such image or tag"
	case PullUnreachable:
		return "the registry could not be reached"
	case PullNotAllowed:
		return "the registry's address is this host or a link-local address, which coligo does not pull from"
	}
	return "the image could not be pulled"
}

// PullError is a failure to pull an image, with the reason users see.
type PullError struct {
	Image  string
	Reason string // one of the Pull* reasons
	Err    error  // the registry's own words
}

func (e *PullError) Error() string { return fmt.Sprintf("pull %s: %s: %v", e.Image, e.Reason, e.Err) }
func (e *PullError) Unwrap() error { return e.Err }

// IsPullError reports whether err is a *PullError and returns it.
func IsPullError(err error) (*PullError, bool) {
	var pe *PullError
	ok := errors.As(err, &pe)
	return pe, ok
}

// LogOptions select what Logs writes.
type LogOptions struct {
	Follow     bool
	Tail       int       // > 0: only the last Tail lines
	Since      time.Time // non-zero: only lines written at or after it
	Timestamps bool      // each line starts with its time (RFC3339Nano) and a space
}
