package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// currentSchema is the schema version this release writes. Raise it, and
// add a Migration from the previous version, whenever the key layout or a
// value encoding changes.
const currentSchema uint32 = 1

// Migration upgrades a database from schema version From to From+1. Open
// runs the migrations a database needs in order, each in one transaction
// together with the update of the version, so a crash leaves the database
// at the old version or the new one.
type Migration struct {
	From    uint32
	Migrate func(ctx context.Context, tx *MigrationTx) error
}

// MigrationTx gives a migration raw access to the keys and values of the
// database (the layout is documented in keys.go). It is valid only during
// the Migrate call.
type MigrationTx struct{ txn *badger.Txn }

// Get returns the value of a key, or ErrNotFound.
func (m *MigrationTx) Get(key []byte) ([]byte, error) {
	item, err := m.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return valueOf(item)
}

// Set stores a value under a key.
func (m *MigrationTx) Set(key, value []byte) error { return set(m.txn, key, value) }

// Delete deletes a key.
func (m *MigrationTx) Delete(key []byte) error { return m.txn.Delete(key) }

// Scan calls fn with every key under prefix and its value, in key order.
// Keys and values are copies collected before the first call, so fn may
// Set and Delete.
func (m *MigrationTx) Scan(prefix []byte, fn func(key, value []byte) error) error {
	var keys, values [][]byte
	it := m.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	for it.Seek(prefix); it.Valid(); it.Next() {
		v, err := valueOf(it.Item())
		if err != nil {
			it.Close()
			return err
		}
		keys = append(keys, it.Item().KeyCopy(nil))
		values = append(values, v)
	}
	it.Close()
	for i := range keys {
		if err := fn(keys[i], values[i]); err != nil {
			return err
		}
	}
	return nil
}

// SchemaVersion returns the schema version of the open database.
func (s *Store) SchemaVersion(ctx context.Context) (uint32, error) {
	var v uint32
	err := s.view(ctx, func(txn *badger.Txn) error {
		var found bool
		var err error
		v, found, err = readSchema(txn)
		if err == nil && !found {
			err = fmt.Errorf("%w: schema version", ErrNotFound)
		}
		return err
	})
	return v, err
}

func readSchema(txn *badger.Txn) (uint32, bool, error) {
	item, err := txn.Get(schemaKey)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	v, err := valueOf(item)
	if err != nil {
		return 0, false, err
	}
	if len(v) != 4 {
		return 0, false, fmt.Errorf("%w: schema version of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint32(v), true, nil
}

// checkSchema stamps a new database with the schema version, refuses a
// newer one, and migrates an older one.
func (s *Store) checkSchema(c *config) error {
	want := currentSchema
	if c.schemaVersion != 0 {
		want = c.schemaVersion
	}
	var have uint32
	var found, empty bool
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		have, found, err = readSchema(txn)
		if err != nil || found {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if !found {
		if !empty {
			return fmt.Errorf("%w: database holds data but no schema version", ErrNotStore)
		}
		return s.db.Update(func(txn *badger.Txn) error {
			return set(txn, schemaKey, binary.BigEndian.AppendUint32(nil, want))
		})
	}
	if have > want {
		return fmt.Errorf("%w: database has version %d, this release knows up to %d", ErrSchemaTooNew, have, want)
	}
	for have < want {
		m, ok := findMigration(c.migrations, have)
		if !ok {
			return fmt.Errorf("%w: version %d (this release writes %d)", ErrSchemaTooOld, have, want)
		}
		err := s.db.Update(func(txn *badger.Txn) error {
			if err := m.Migrate(context.Background(), &MigrationTx{txn: txn}); err != nil {
				return err
			}
			return set(txn, schemaKey, binary.BigEndian.AppendUint32(nil, have+1))
		})
		if err != nil {
			return fmt.Errorf("store: migrate schema from version %d: %w", have, err)
		}
		s.log.Info("store: schema migrated", "from", have, "to", have+1)
		have++
	}
	return nil
}

func findMigration(ms []Migration, from uint32) (Migration, bool) {
	for _, m := range ms {
		if m.From == from {
			return m, true
		}
	}
	return Migration{}, false
}
