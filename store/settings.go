package store

import (
	"context"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// update runs fn in a read-write transaction, again if it conflicted with
// a concurrent one (badger's optimistic concurrency: a transaction that
// read a key another committed since fails with badger.ErrConflict and
// leaves nothing behind). fn must be safe to run several times.
func (s *Store) update(ctx context.Context, what string, fn func(txn *badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.space.check(0, 0); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	for attempt := 0; ; attempt++ {
		err := s.db.Update(fn)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, badger.ErrConflict) && attempt < maxConflictRetries:
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrCorrupt):
			return err
		}
		return fmt.Errorf("store: %s: %w", what, err)
	}
}

// TakeSetting deletes the setting (scope, key) and returns the value it
// had, in one transaction: of several concurrent takes of one setting
// exactly one gets the value, the others get ErrNotFound, as if they had
// come after it. It is the check-and-delete of a one-use token.
func (s *Store) TakeSetting(ctx context.Context, scope, key string) ([]byte, error) {
	if err := checkName("setting scope", scope, maxIDLen); err != nil {
		return nil, err
	}
	if err := checkName("setting key", key, maxNameLen); err != nil {
		return nil, err
	}
	k := settingKey(scope, key)
	var v []byte
	err := s.update(ctx, "take setting", func(txn *badger.Txn) error {
		var err error
		if v, err = get(txn, k, "setting "+scope+"/"+key); err != nil {
			return err
		}
		return txn.Delete(k)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// PurgeSettings deletes, in one transaction, every setting of the scope
// for which drop returns true, and returns how many it deleted. drop may
// run more than once for a setting (see update) and must not keep value.
func (s *Store) PurgeSettings(ctx context.Context, scope string, drop func(key string, value []byte) bool) (int, error) {
	if err := checkName("setting scope", scope, maxIDLen); err != nil {
		return 0, err
	}
	p := key([]byte{nsSetting}, lp([]byte(scope)))
	var n int
	err := s.update(ctx, "purge settings", func(txn *badger.Txn) error {
		n = 0
		var doomed [][]byte
		err := scan(ctx, txn, p, true, func(item *badger.Item) (bool, error) {
			v, err := valueOf(item)
			if err != nil {
				return false, err
			}
			if drop(string(item.Key()[len(p):]), v) {
				doomed = append(doomed, item.KeyCopy(nil))
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, k := range doomed {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
