package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Free space. Badger writes its memtable logs and value logs through
// memory maps of files it creates sparse (twice the memtable size, and
// twice the value-log file size): a page first written there when the file system is
// full faults (SIGBUS) and kills the process, in a goroutine of badger's
// where no error or recover reaches. So every write is refused, with
// ErrNoSpace and nothing written, while the file system's free space is
// under what the write needs: its bytes, twice over (the log and the tree),
// plus what the sparse files may still take before badger moves on to new
// ones (a memtable's log, a value-log file), plus a flush of a full
// memtable and headroom for compactions: about 130 MiB for a new store
// with the default sizes, less as its files fill. The store stays open and
// readable; a write tried again once space is freed goes through.

// spaceHeadroom is free space kept beyond the sparse files' holes and a
// memtable flush, for compactions and manifest changes.
const spaceHeadroom = 16 << 20

// holesEvery is how often the holes of the sparse files are measured again
// (a directory read and a stat per file); a memtable or value-log file
// created in between is covered by the headroom of a flush.
const holesEvery = 100 * time.Millisecond

type spaceGuard struct {
	dir      string
	flush    int64 // a memtable's size: what a flush of one writes
	vlogFile int64 // a value-log file's size
	// free reports the bytes the file system lets this process write,
	// ok false where it cannot say (then nothing is checked); tests
	// replace it.
	free func(dir string) (n int64, ok bool)

	mu       sync.Mutex
	holes    int64
	measured time.Time
}

func newSpaceGuard(dir string, memTableSize, vlogFileSize int64) *spaceGuard {
	return &spaceGuard{dir: dir, flush: memTableSize, vlogFile: vlogFileSize, free: freeBytes}
}

// CheckSpace returns ErrNoSpace (wrapped with the figures) if the store's
// file system has no room for a small write.
func (s *Store) CheckSpace() error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.space.check(0, 0)
}

// check returns ErrNoSpace (wrapped with the figures) if a write of about
// n bytes, and extra more (a value-log rewrite), may not fit.
func (g *spaceGuard) check(n, extra int64) error {
	free, ok := g.free(g.dir)
	if !ok {
		return nil
	}
	need := 2*n + extra + g.sparseHoles() + g.flush + spaceHeadroom
	if free < need {
		return fmt.Errorf("%w: %s free on the store's file system, %s needed to write safely (%s)",
			ErrNoSpace, mib(free), mib(need), g.dir)
	}
	return nil
}

// sparseHoles is what the memtable and value-log files may still take on
// disk: up to the length badger fills them to, less their allocated
// blocks, measured at most every holesEvery.
func (g *spaceGuard) sparseHoles() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.measured) < holesEvery {
		return g.holes
	}
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		return g.holes // the last figure; the write itself will say what is wrong
	}
	var holes int64
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if ext != ".mem" && ext != ".vlog" {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		// Badger moves to a new file once a memtable's log holds about a
		// memtable, or a value log its file size: the rest of the hole
		// is never written.
		limit := g.vlogFile
		if ext == ".mem" {
			limit = g.flush
		}
		used := diskBytes(info)
		if h := min(info.Size(), limit) - used; h > 0 {
			holes += h
		}
	}
	g.holes, g.measured = holes, time.Now()
	return holes
}

// mib is n bytes in MiB, for messages.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// bytes is about what the batch writes: its keys' components and values.
func (b *Batch) bytes() int64 {
	var n int64
	for i := range b.ops {
		op := &b.ops[i]
		n += int64(len(op.group) + len(op.id) + len(op.key) + len(op.value) + 16)
		n += int64(len(op.entry.ID) + len(op.entry.Envelope) + len(op.entry.Result))
	}
	return n
}
