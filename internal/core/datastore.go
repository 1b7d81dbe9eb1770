package core

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// KindDataStore is the store kind of persistent data stores.
const KindDataStore = "persistent_data_store"

// MaxDataStoresPerProject bounds a project's persistent data stores.
const MaxDataStoresPerProject = 100

// MaxDataStoreMounts is how many persistent data stores an app or a job
// mounts at most, as in Code Engine.
const MaxDataStoreMounts = 2

// StorageObject is the one storage_type: a bucket of an object store.
const StorageObject = "object_storage"

// The data keys of an object_storage data store.
const (
	DataBucketName     = "bucket_name"
	DataBucketLocation = "bucket_location"
	DataSecretName     = "secret_name"
)

// DataStore is a persistent data store: a reference to a bucket of an
// S3-compatible object store and the hmac_auth secret to reach it with.
// Nothing contacts the store until an instance mounts it.
type DataStore struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	StorageType string            `json:"storage_type"`
	Data        map[string]string `json:"data"`
	CreatedAt   time.Time         `json:"created_at"`
}

// bucketName is S3's bucket naming rule: 3 to 63 lower-case letters,
// digits, '.' and '-', beginning and ending with a letter or a digit.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$`)

// ValidateDataStore checks a data store's name and data; locations are
// the locations the server maps to an object store.
func ValidateDataStore(d DataStore, locations map[string]string) error {
	if len(d.Name) > 63 || !dns1123Subdomain.MatchString(d.Name) {
		return Invalid("name", "%q is not 1 to 63 lower-case letters, digits, '-' and '.', beginning and ending with a letter or digit", clip(d.Name))
	}
	switch d.StorageType {
	case StorageObject:
	case "":
		return Invalid("storage_type", "is required: object_storage")
	default:
		return Invalid("storage_type", "%q is not object_storage", clip(d.StorageType))
	}
	total := 0
	for k, v := range d.Data {
		if len(k) > 253 || !dataKey.MatchString(k) {
			return Invalid("data", "key %q is not 1 to 253 letters, digits, '-', '_' and '.'", clip(k))
		}
		total += len(k) + len(v)
	}
	if total > 1<<20 {
		return Invalid("data", "holds %d bytes, more than 1 MiB", total)
	}
	if b := d.Data[DataBucketName]; !bucketName.MatchString(b) {
		return Invalid("data."+DataBucketName, "%q is not a bucket name (3 to 63 lower-case letters, digits, '.' and '-')", clip(b))
	}
	if err := subdomainField("data."+DataSecretName, d.Data[DataSecretName], true); err != nil {
		return err
	}
	loc := d.Data[DataBucketLocation]
	if loc == "" {
		return Invalid("data."+DataBucketLocation, "is required: one of the locations this server has an object store for (%s)", locationList(locations))
	}
	if locations[loc] == "" {
		return Invalid("data."+DataBucketLocation, "%q is not a location this server has an object store for (%s)", clip(loc), locationList(locations))
	}
	return nil
}

func locationList(m map[string]string) string {
	if len(m) == 0 {
		return "none: the operator sets them with --object-storage LOCATION=URL"
	}
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}
