package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/y"
	"google.golang.org/protobuf/proto"
)

// Badger v4.9.6 opens table files in goroutines of its own and panics there
// (which no recover can catch) when a table's footer is damaged, and it
// silently skips a table whose block checksums fail, losing its records.
// checkTables, verifyTables and checkNoTableSkipped close these holes
// around badger.Open.

// checkTables checks the footer of every table file in dir that the
// manifest lists: the lengths of the checksum and of the index must fit in
// the file, and the index must match its checksum. A table file the
// manifest does not list was being written when the process died (a flush
// or a compaction records its table in the manifest only once the file is
// complete); badger deletes it while opening, so it is not checked here.
// If the manifest itself cannot be read, nothing is checked and
// badger.Open reports the manifest. It reads only.
func checkTables(dir string) error {
	listed, ok := manifestTables(dir)
	if !ok {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: read directory: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sst")
		if !ok {
			continue
		}
		if id, err := strconv.ParseUint(name, 10, 64); err != nil || !listed[id] {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("store: read table: %w", err)
		}
		if err := checkTableFooter(data); err != nil {
			return fmt.Errorf("%w: %w: %s: %s", ErrCorrupt, ErrDamagedTable, e.Name(), err)
		}
	}
	return nil
}

// manifestTables returns the ids of the tables the MANIFEST in dir lists,
// and false if there is no manifest or it cannot be read.
func manifestTables(dir string) (map[uint64]bool, bool) {
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	m, _, err := badger.ReplayManifestFile(f, externalMagic, badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return nil, false
	}
	listed := make(map[uint64]bool, len(m.Tables))
	for id := range m.Tables {
		listed[id] = true
	}
	return listed, true
}

// checkTableFooter follows table.initIndex of badger: from the end, a
// 4-byte checksum length, the checksum (a pb.Checksum), a 4-byte index
// length and the index.
func checkTableFooter(data []byte) error {
	pos := len(data) - 4
	if pos < 0 {
		return fmt.Errorf("%d bytes", len(data))
	}
	n := int(binary.BigEndian.Uint32(data[pos:]))
	if n > pos-4 {
		return fmt.Errorf("checksum length %d beyond the file", n)
	}
	pos -= n
	var sum pb.Checksum
	if err := proto.Unmarshal(data[pos:pos+n], &sum); err != nil {
		return fmt.Errorf("index checksum: %v", err)
	}
	pos -= 4
	n = int(binary.BigEndian.Uint32(data[pos:]))
	if n > pos {
		return fmt.Errorf("index length %d beyond the file", n)
	}
	if err := y.VerifyChecksum(data[pos-n:pos], &sum); err != nil {
		return fmt.Errorf("index checksum mismatch")
	}
	return nil
}

// checkNoTableSkipped returns an error if a table file that is still in dir
// after a read-only badger.Open is not one of the tables badger opened:
// badger dropped it for a checksum mismatch. (Badger itself deletes, while
// opening, table files that its manifest does not list, left by a crash in
// a compaction.) Only meaningful read-only: a writable badger starts
// flushing new tables at once.
func checkNoTableSkipped(dir string, db *badger.DB) error {
	opened := map[uint64]bool{}
	for _, t := range db.Tables() {
		opened[t.ID] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: read directory: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sst")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		if !opened[id] {
			return fmt.Errorf("%w: %w: %s failed its checksums", ErrCorrupt, ErrDamagedTable, e.Name())
		}
	}
	return nil
}
