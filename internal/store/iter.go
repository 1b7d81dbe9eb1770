package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/coligo/coligo/internal/core"
)

// Lister is what Records and All need of a store.
type Lister interface {
	List(ctx context.Context, project, kind, after string, limit int) ([]core.Record, bool, error)
}

// Records iterates over every record of a kind in a project, in name
// order, a page at a time. A project that does not exist has none. An
// error ends the iteration, as its last pair.
func Records(ctx context.Context, st Lister, project, kind string) iter.Seq2[core.Record, error] {
	return func(yield func(core.Record, error) bool) {
		after := ""
		for {
			recs, more, err := st.List(ctx, project, kind, after, 100)
			if errors.Is(err, core.ErrNotFound) {
				return
			}
			if err != nil {
				yield(core.Record{}, err)
				return
			}
			for _, r := range recs {
				after = r.Name
				if !yield(r, nil) {
					return
				}
			}
			if !more {
				return
			}
		}
	}
}

// Decoded is a record's value as T, with the record it came from.
type Decoded[T any] struct {
	Record core.Record
	Value  T
}

// All iterates over every record of a kind in a project decoded as T; a
// record that does not decode ends the iteration with its error.
func All[T any](ctx context.Context, st Lister, project, kind string) iter.Seq2[Decoded[T], error] {
	return func(yield func(Decoded[T], error) bool) {
		for r, err := range Records(ctx, st, project, kind) {
			var d Decoded[T]
			if err == nil {
				d.Record = r
				if err = json.Unmarshal(r.Value, &d.Value); err != nil {
					err = fmt.Errorf("decode %s %s: %w", kind, r.Name, err)
				}
			}
			if !yield(d, err) || err != nil {
				return
			}
		}
	}
}
