package store

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
)

// TestWritesAreRefusedWithoutRoomAndGoThroughOnceThereIs: with the file
// system's free space under what a write needs (the sparse files' holes,
// a memtable flush, headroom and the write), every kind of write fails
// with ErrNoSpace and leaves nothing; once space is back the same writes
// succeed, with no reopening.
func TestWritesAreRefusedWithoutRoomAndGoThroughOnceThereIs(t *testing.T) {
	ctx := context.Background()
	s := openPlain(t, t.TempDir())
	var free atomic.Int64
	s.space.free = func(string) (int64, bool) { return free.Load(), true }
	need := s.space.flush + spaceHeadroom + s.space.sparseHoles()

	free.Store(need - 1) // not even room for an empty write
	b := s.NewBatch()
	b.PutSetting("s", "k", []byte("value"))
	b.AppendLog([]byte("group"), LogEntry{ID: []byte("e1"), Envelope: make([]byte, 1000)})
	if err := s.Write(ctx, b); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Write with %d bytes free: %v, want ErrNoSpace", free.Load(), err)
	}
	if err := s.PutPeer(ctx, "peer", []byte("record")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("PutPeer: %v, want ErrNoSpace", err)
	}
	if _, err := s.TakeSetting(ctx, "s", "k"); !errors.Is(err, ErrNoSpace) && !errors.Is(err, ErrNotFound) {
		t.Fatalf("TakeSetting: %v, want ErrNoSpace or ErrNotFound", err)
	}
	if err := s.CollectGarbage(ctx); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("CollectGarbage: %v, want ErrNoSpace", err)
	}
	if _, err := s.Setting(ctx, "s", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused write left its setting: %v", err)
	}
	if _, err := s.LogByID(ctx, []byte("group"), []byte("e1")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused write left its log entry: %v", err)
	}

	// Room for the batch's bytes twice over, and one byte short of it.
	free.Store(need + 2*b.bytes() - 1)
	if err := s.Write(ctx, b); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Write one byte short: %v, want ErrNoSpace", err)
	}
	free.Store(need + 2*b.bytes())
	mustWrite(t, s, b)
	if v, err := s.Setting(ctx, "s", "k"); err != nil || string(v) != "value" {
		t.Fatalf("Setting after the write went through: %q, %v", v, err)
	}
	if err := s.PutPeer(ctx, "peer", []byte("record")); err != nil {
		t.Fatalf("PutPeer with room: %v", err)
	}
}

// TestSparseHolesAreCounted: a fresh store's memtable log and value log
// are sparse files, nearly all of them holes that writes may still fill
// up to the size where badger moves on; the guard counts them.
func TestSparseHolesAreCounted(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no allocated-blocks figure here")
	}
	s := openPlain(t, t.TempDir(), withSizes(4<<20, 8<<20))
	holes := s.space.sparseHoles()
	// The memtable log (sparse to twice the memtable) is filled to about
	// a memtable (4 MiB), the value log (sparse to twice its file size) to
	// its file size (8 MiB), less the little written; a file system
	// without sparse files has no holes at all.
	if holes != 0 && (holes < 11<<20 || holes > 12<<20) {
		t.Fatalf("holes %d bytes, want between 11 and 12 MiB (or 0 without sparse files)", holes)
	}
	t.Logf("holes of a fresh store: %s", mib(holes))
}
