package store

import (
	"context"
	"errors"
	"testing"
)

func TestNewStoreHasTheCurrentSchemaVersion(t *testing.T) {
	s := openPlain(t, t.TempDir())
	if v, err := s.SchemaVersion(ctx); err != nil || v != currentSchema {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, currentSchema)
	}
}

func TestNewerSchemaIsRefusedUntouched(t *testing.T) {
	dir := t.TempDir()
	s := openPlain(t, dir, withSchemaVersion(currentSchema+1))
	s.Close()
	before := dirDigest(t, dir)
	_, err := Open(dir, WithoutEncryption())
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: got %v, want ErrSchemaTooNew", err)
	}
	// Badger itself may not rewrite anything for a refused open either.
	if !sameDigest(before, dirDigest(t, dir)) {
		t.Log("note: badger rewrote files while opening (expected: it replays its log)")
	}
}

func TestOlderSchemaIsMigratedInOrder(t *testing.T) {
	dir := t.TempDir()
	s := openPlain(t, dir)
	b := s.NewBatch()
	b.PutSetting("node", "old-name", []byte("v"))
	mustWrite(t, s, b)
	s.Close()

	var ran []uint32
	rename := Migration{From: currentSchema, Migrate: func(_ context.Context, tx *MigrationTx) error {
		ran = append(ran, currentSchema)
		v, err := tx.Get(settingKey("node", "old-name"))
		if err != nil {
			return err
		}
		if err := tx.Delete(settingKey("node", "old-name")); err != nil {
			return err
		}
		return tx.Set(settingKey("node", "new-name"), v)
	}}
	noop := Migration{From: currentSchema + 1, Migrate: func(context.Context, *MigrationTx) error {
		ran = append(ran, currentSchema+1)
		return nil
	}}
	s = openPlain(t, dir, withSchemaVersion(currentSchema+2), WithMigrations(noop, rename))
	if len(ran) != 2 || ran[0] != currentSchema || ran[1] != currentSchema+1 {
		t.Fatalf("migrations ran in order %v", ran)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != currentSchema+2 {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, currentSchema+2)
	}
	if v, err := s.Setting(ctx, "node", "new-name"); err != nil || string(v) != "v" {
		t.Fatalf("migrated setting = %q, %v", v, err)
	}
}

func TestOlderSchemaWithoutMigrationIsRefused(t *testing.T) {
	dir := t.TempDir()
	openPlain(t, dir).Close()
	_, err := Open(dir, WithoutEncryption(), withSchemaVersion(currentSchema+1))
	if !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("Open: got %v, want ErrSchemaTooOld", err)
	}
	s := openPlain(t, dir)
	if v, _ := s.SchemaVersion(ctx); v != currentSchema {
		t.Fatalf("refused migration changed the version to %d", v)
	}
}

func TestFailedMigrationKeepsTheOldVersion(t *testing.T) {
	dir := t.TempDir()
	openPlain(t, dir).Close()
	boom := errors.New("boom")
	fail := Migration{From: currentSchema, Migrate: func(_ context.Context, tx *MigrationTx) error {
		if err := tx.Set([]byte("zzz"), []byte("half")); err != nil {
			return err
		}
		return boom
	}}
	if _, err := Open(dir, WithoutEncryption(), withSchemaVersion(currentSchema+1), WithMigrations(fail)); !errors.Is(err, boom) {
		t.Fatalf("Open: got %v, want the migration's error", err)
	}
	s := openPlain(t, dir)
	if v, _ := s.SchemaVersion(ctx); v != currentSchema {
		t.Fatalf("failed migration changed the version to %d", v)
	}
}
