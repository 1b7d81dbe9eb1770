package api

import (
	"context"
	"net/http"
)

// ResourceTypeDataStore is a persistent data store's resource_type.
const ResourceTypeDataStore = "persistent_data_store_v2"

// PersistentDataStorePrototype creates a persistent data store: for
// storage_type object_storage, data holds bucket_name, bucket_location and
// secret_name (an hmac_auth secret).
type PersistentDataStorePrototype struct {
	Name        string            `json:"name"`
	StorageType string            `json:"storage_type"`
	Data        map[string]string `json:"data,omitempty"`
}

// PersistentDataStore is a reference to a bucket, mountable into apps and
// jobs.
type PersistentDataStore struct {
	CreatedAt    string            `json:"created_at"`
	Data         map[string]string `json:"data"`
	EntityTag    string            `json:"entity_tag"`
	Href         string            `json:"href"`
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	ProjectID    string            `json:"project_id"`
	Region       string            `json:"region"`
	ResourceType string            `json:"resource_type"`
	StorageType  string            `json:"storage_type"`
}

// PersistentDataStoreList is a page of persistent data stores.
type PersistentDataStoreList struct {
	Limit                int                   `json:"limit"`
	First                *PageRef              `json:"first,omitempty"`
	Next                 *PageRef              `json:"next,omitempty"`
	PersistentDataStores []PersistentDataStore `json:"persistent_data_stores"`
}

// CreatePersistentDataStore creates a persistent data store; nothing
// contacts the store until an instance mounts it.
func (c *Client) CreatePersistentDataStore(ctx context.Context, project string, in PersistentDataStorePrototype) (*PersistentDataStore, error) {
	return call[PersistentDataStore](ctx, c, http.MethodPost, resourcePath(project, "persistent_data_stores"), nil, in)
}

// GetPersistentDataStore reads a persistent data store by its name.
func (c *Client) GetPersistentDataStore(ctx context.Context, project, name string) (*PersistentDataStore, error) {
	return call[PersistentDataStore](ctx, c, http.MethodGet, resourcePath(project, "persistent_data_stores", name), nil, nil)
}

// ListPersistentDataStores lists a page of a project's persistent data
// stores.
func (c *Client) ListPersistentDataStores(ctx context.Context, project string, o ListOptions) (*PersistentDataStoreList, error) {
	return call[PersistentDataStoreList](ctx, c, http.MethodGet, resourcePath(project, "persistent_data_stores"), o.query(), nil)
}

// AllPersistentDataStores lists every persistent data store of a project.
func (c *Client) AllPersistentDataStores(ctx context.Context, project string) ([]PersistentDataStore, error) {
	return all(func(o ListOptions) ([]PersistentDataStore, *PageRef, error) {
		l, err := c.ListPersistentDataStores(ctx, project, o)
		if err != nil {
			return nil, nil, err
		}
		return l.PersistentDataStores, l.Next, nil
	})
}

// DeletePersistentDataStore deletes a persistent data store; the bucket
// stays as it is.
func (c *Client) DeletePersistentDataStore(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, resourcePath(project, "persistent_data_stores", name), nil, nil, nil, nil)
	return err
}
