package core

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateDataStore(t *testing.T) {
	locs := map[string]string{"eu-de": "https://s3.eu-de.example.com", "local": "http://127.0.0.1:9000"}
	ok := func() DataStore {
		return DataStore{Name: "results", StorageType: StorageObject,
			Data: map[string]string{DataBucketName: "my-bucket", DataBucketLocation: "eu-de", DataSecretName: "hmac"}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(*DataStore)
		field string
	}{
		{"valid", func(*DataStore) {}, ""},
		{"extra keys are kept", func(d *DataStore) { d.Data["region.note"] = "x" }, ""},
		{"no name", func(d *DataStore) { d.Name = "" }, "name"},
		{"upper-case name", func(d *DataStore) { d.Name = "Results" }, "name"},
		{"long name", func(d *DataStore) { d.Name = strings.Repeat("a", 64) }, "name"},
		{"no type", func(d *DataStore) { d.StorageType = "" }, "storage_type"},
		{"block storage", func(d *DataStore) { d.StorageType = "block_storage" }, "storage_type"},
		{"no bucket", func(d *DataStore) { delete(d.Data, DataBucketName) }, "data.bucket_name"},
		{"bad bucket", func(d *DataStore) { d.Data[DataBucketName] = "My_Bucket" }, "data.bucket_name"},
		{"no secret", func(d *DataStore) { delete(d.Data, DataSecretName) }, "data.secret_name"},
		{"no location", func(d *DataStore) { delete(d.Data, DataBucketLocation) }, "data.bucket_location"},
		{"unknown location", func(d *DataStore) { d.Data[DataBucketLocation] = "us-south" }, "data.bucket_location"},
		{"bad key", func(d *DataStore) { d.Data["a b"] = "x" }, "data"},
		{"huge", func(d *DataStore) { d.Data["big"] = strings.Repeat("x", 1<<20) }, "data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ok()
			tc.edit(&d)
			err := ValidateDataStore(d, locs)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %v, want one naming %q", err, tc.field)
			}
		})
	}
	if err := ValidateDataStore(ok(), nil); err == nil || !strings.Contains(err.Error(), "--object-storage") {
		t.Errorf("a server without object stores: %v", err)
	}
}

func FuzzValidateDataStore(f *testing.F) {
	f.Add("results", "object_storage", "my-bucket", "eu-de", "hmac")
	f.Fuzz(func(t *testing.T, name, typ, bucket, loc, secret string) {
		d := DataStore{Name: name, StorageType: typ, Data: map[string]string{DataBucketName: bucket, DataBucketLocation: loc, DataSecretName: secret}}
		if ValidateDataStore(d, map[string]string{"eu-de": "http://127.0.0.1:1"}) == nil && (!bucketName.MatchString(bucket) || loc != "eu-de") {
			t.Fatalf("accepted %+v", d)
		}
	})
}
