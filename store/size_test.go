package store

import (
	"context"
	"testing"
)

// TestSizeCountsTheFilesOnDisk: Size reports the store's files, and grows
// with what is written (badger's own figures stayed 0 for a daemon's
// store, so status showed a 68 MiB store as 0 B).
func TestSizeCountsTheFilesOnDisk(t *testing.T) {
	s := openPlain(t, t.TempDir())
	lsm0, vlog0, other0, err := s.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for i := range 64 {
		b.PutSetting("size", string(rune('a'+i%26))+string(rune('a'+i/26)), make([]byte, 64<<10))
	}
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	lsm, vlog, other, err := s.Size()
	if err != nil {
		t.Fatal(err)
	}
	if other0 == 0 {
		t.Errorf("a new store has no manifest or header on disk by Size")
	}
	if grew := (lsm + vlog) - (lsm0 + vlog0); grew < 4<<20 {
		t.Errorf("the store grew by %d bytes after 4 MiB written (lsm %d, vlog %d, other %d)", grew, lsm, vlog, other)
	}
}
