package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
)

// plainSealer stores values unencrypted. It exists only here, as the
// baseline that measures what sealing costs.
type plainSealer struct{}

func (plainSealer) NewDEK(context.Context, string, string) ([]byte, core.Encryption, error) {
	return []byte("plain"), core.Encryption{Provider: "none"}, nil
}
func (plainSealer) Seal(_ context.Context, _ string, _, _, p []byte) ([]byte, error) { return p, nil }
func (plainSealer) Open(_ context.Context, _ string, _, _, s []byte) ([]byte, error) { return s, nil }
func (plainSealer) Forget([]byte)                                                    {}
func (plainSealer) Rewrap(_ context.Context, _ string, w []byte) ([]byte, string, bool, error) {
	return w, "", false, nil
}

// BenchmarkSealingCost runs the same store operations on a sealed and an
// unsealed store in one run, interleaved, and reports sealed/unsealed per
// operation. The target is at most 1.2.
func BenchmarkSealingCost(b *testing.B) {
	ctx := context.Background()
	sealed, _ := openTest(b)
	plain, err := Open(filepath.Join(b.TempDir(), "plain.db"), plainSealer{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	value := []byte(`{"id":"6c70f523-e50b-4ab3-8ef2-b224f127a843","name":"db","format":"generic","data":{"password":"0123456789abcdef0123456789abcdef","user":"app"},"created_at":"2026-11-27T03:12:43Z"}`)
	type store struct {
		db      *DB
		project string
	}
	stores := []store{{sealed, newProject(b, sealed, "bench").ID}, {plain, newProject(b, plain, "bench").ID}}
	for _, s := range stores {
		for i := range 10 {
			s.db.Create(ctx, core.Ref{Project: s.project, Kind: core.KindSecret, Name: fmt.Sprint("list-", i)}, value, 0)
		}
	}
	ops := []struct {
		name string
		run  func(s store, i int) error
	}{
		{"create", func(s store, i int) error {
			_, err := s.db.Create(ctx, core.Ref{Project: s.project, Kind: core.KindConfigMap, Name: fmt.Sprint("c-", i)}, value, 0)
			return err
		}},
		{"get", func(s store, i int) error {
			_, err := s.db.Get(ctx, core.Ref{Project: s.project, Kind: core.KindSecret, Name: "list-3"})
			return err
		}},
		{"list10", func(s store, i int) error {
			_, _, err := s.db.List(ctx, s.project, core.KindSecret, "", 10)
			return err
		}},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			var spent [2]time.Duration
			for i := 0; b.Loop(); i++ {
				for j := range stores {
					// Alternate which store goes first, so that neither is
					// always the one that warms a cache.
					k := (j + i) % 2
					start := time.Now()
					if err := op.run(stores[k], i); err != nil {
						b.Fatal(err)
					}
					spent[k] += time.Since(start)
				}
			}
			b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "sealed-ns/op")
			b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "plain-ns/op")
			b.ReportMetric(float64(spent[0])/float64(spent[1]), "sealed/plain")
		})
	}
}

// BenchmarkDEKRotation times a data key rotation of a project of 1,000
// records (a new DEK, every record sealed again, the old DEK forgotten)
// against writing the same 1,000 records once more with Replace, the
// baseline, measured in the same run:
//
//	go test -run '^$' -bench BenchmarkDEKRotation -benchtime 5x ./internal/store
func BenchmarkDEKRotation(b *testing.B) {
	ctx := context.Background()
	db, _ := openTest(b)
	p := newProject(b, db, "rotate")
	value := []byte(`{"name":"s","format":"generic","data":{"password":"0123456789abcdef0123456789abcdef"}}`)
	const n = 1000
	for i := range n {
		if _, err := db.Create(ctx, core.Ref{Project: p.ID, Kind: core.KindSecret, Name: fmt.Sprintf("s-%04d", i)}, value, 0); err != nil {
			b.Fatal(err)
		}
	}
	var rotate, rewrite time.Duration
	for b.Loop() {
		start := time.Now()
		if began, err := db.BeginDEKRotation(ctx, p.ID); err != nil || !began {
			b.Fatal(began, err)
		}
		done, err := db.ResealProject(ctx, p.ID, 100, nil)
		if err != nil || done != n {
			b.Fatal(done, err)
		}
		rotate += time.Since(start)
		start = time.Now()
		for i := range n {
			if _, err := db.Replace(ctx, core.Ref{Project: p.ID, Kind: core.KindSecret, Name: fmt.Sprintf("s-%04d", i)}, value, 0); err != nil {
				b.Fatal(err)
			}
		}
		rewrite += time.Since(start)
	}
	b.ReportMetric(float64(rotate.Milliseconds())/float64(b.N), "ms/rotation")
	b.ReportMetric(float64(rewrite.Milliseconds())/float64(b.N), "ms/baseline")
	b.ReportMetric(rotate.Seconds()/rewrite.Seconds(), "rotation/baseline")
}
