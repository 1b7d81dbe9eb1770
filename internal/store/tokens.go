package store

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/coligo/coligo/internal/core"
)

// PutToken stores a token by its hash. The project, when set, must be usable.
func (db *DB) PutToken(ctx context.Context, t core.Token) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode token: %w", err)
	}
	return db.update("put_token", func(tx *bolt.Tx) error {
		if t.ProjectID != "" {
			p, err := getProject(tx, t.ProjectID)
			if err != nil {
				return err
			}
			if !p.Usable() {
				return fmt.Errorf("project %s is %s: %w", t.ProjectID, p.Status, core.ErrNotActive)
			}
		}
		return tx.Bucket(bktTokens).Put(t.Hash, b)
	})
}

// TokenByHash returns the token whose value hashes to hash.
func (db *DB) TokenByHash(ctx context.Context, hash []byte) (core.Token, error) {
	var t core.Token
	err := db.view("get_token", func(tx *bolt.Tx) error {
		b := tx.Bucket(bktTokens).Get(hash)
		if b == nil {
			return core.ErrNotFound
		}
		return json.Unmarshal(b, &t)
	})
	return t, err
}

// ListTokens returns every token.
func (db *DB) ListTokens(ctx context.Context) ([]core.Token, error) {
	var out []core.Token
	err := db.view("list_tokens", func(tx *bolt.Tx) error {
		return tx.Bucket(bktTokens).ForEach(func(_, v []byte) error {
			var t core.Token
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode token: %w", err)
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

// DeleteToken removes the token with id; core.ErrNotFound when there is none.
func (db *DB) DeleteToken(ctx context.Context, id string) error {
	return db.update("delete_token", func(tx *bolt.Tx) error {
		found := false
		err := deleteWhere(tx.Bucket(bktTokens), func(v []byte) bool {
			var t core.Token
			if json.Unmarshal(v, &t) == nil && t.ID == id {
				found = true
				return true
			}
			return false
		})
		if err == nil && !found {
			err = fmt.Errorf("token %s: %w", id, core.ErrNotFound)
		}
		return err
	})
}
