package apiserver

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

func (a *API) dataStoreView(p core.Project, rec core.Record, d core.DataStore) api.PersistentDataStore {
	return api.PersistentDataStore{CreatedAt: rfc3339(d.CreatedAt), Data: d.Data, EntityTag: etag(rec.Version),
		Href: a.linkBase + "/v2/projects/" + p.ID + "/persistent_data_stores/" + d.Name, ID: d.ID, Name: d.Name, ProjectID: p.ID,
		Region: a.cfg.Region, ResourceType: api.ResourceTypeDataStore, StorageType: d.StorageType}
}

// createDataStore records a bucket and the hmac_auth secret to reach it
// with. As in Code Engine, the store is not contacted: a wrong bucket or
// key shows when an instance mounts it.
func (a *API) createDataStore(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.PersistentDataStorePrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	d := core.DataStore{ID: uuid.NewString(), Name: in.Name, StorageType: in.StorageType, Data: in.Data, CreatedAt: a.cfg.Now().UTC()}
	if d.Data == nil {
		d.Data = map[string]string{}
	}
	if err := core.ValidateDataStore(d, a.cfg.ObjectStorage); err != nil {
		return err
	}
	secret := d.Data[core.DataSecretName]
	_, sec, err := loadRecord[core.Secret](a, r, core.Ref{Project: p.ID, Kind: core.KindSecret, Name: secret})
	switch {
	case isNotFound(err):
		return core.Invalid("data."+core.DataSecretName, "the project has no secret %s", clipTag(secret))
	case err != nil:
		return err
	case sec.Format != core.FormatHMACAuth:
		return core.Invalid("data."+core.DataSecretName, "secret %s is a %s secret; a data store takes an hmac_auth one", clipTag(secret), sec.Format)
	}
	return createRecord(a, w, r, core.Ref{Project: p.ID, Kind: core.KindDataStore, Name: d.Name}, d, core.MaxDataStoresPerProject,
		func(rec core.Record) any { return a.dataStoreView(p, rec, d) })
}

func (a *API) getDataStore(w http.ResponseWriter, r *http.Request) error {
	return getRecord(a, w, r, core.KindDataStore, a.dataStoreView)
}

func (a *API) listDataStores(w http.ResponseWriter, r *http.Request) error {
	return listRecords(a, w, r, core.KindDataStore, func(p core.Project, rec core.Record, l *api.PersistentDataStoreList) (bool, error) {
		d, err := unmarshalRecord[core.DataStore](rec)
		if err != nil {
			return false, err
		}
		l.PersistentDataStores = append(l.PersistentDataStores, a.dataStoreView(p, rec, d))
		return true, nil
	}, func(l *api.PersistentDataStoreList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.PersistentDataStores == nil {
			l.PersistentDataStores = []api.PersistentDataStore{}
		}
	})
}

func (a *API) deleteDataStore(w http.ResponseWriter, r *http.Request) error {
	return a.deleteRecord(w, r, core.KindDataStore)
}
