package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/y"
	"google.golang.org/protobuf/proto"
)

// Salvage of a store whose tables are damaged (Open fails with
// ErrDamagedTable). What it reads, and why that way:
//
//   - Tables whose footer or index is damaged cannot be opened at all
//     (badger panics on them in goroutines of its own): they are left out
//     of the view by a DELETE change appended to a copy of the MANIFEST.
//   - Tables with damaged blocks stay in the view, so that their sound
//     blocks are read. Every read runs in the calling goroutine under a
//     recover; badger's iterator stops at a damaged block (or panics),
//     which ends the listing of that key range: what lies beyond is
//     counted as unreadable, never guessed.
//   - The view is a writable badger over copies of the files (tables,
//     value logs, memtable logs, key registry) with compactions off: a
//     read-only badger refuses the memtable logs every crash leaves, and
//     they hold the latest writes. Nothing of the damaged store is written.
//   - Every value carries its checksum (values.go): a value that fails it
//     is skipped and counted.
//
// A record whose newest version was in a part that cannot be read may show
// in an older version (badger then finds the older one). So Salvage copies
// only what the plan names, and what a caller should name is what may be
// old without harm: an identity (never changed once made), the peer book,
// settings that are no one-use tokens, and logs of messages. It never
// copies ordering state (epochs, heads, outboxes, delivered ids) or
// KeyPackage private keys: an older copy of those could make the node use
// a nonce or a key a second time.

// SalvagePlan says what Salvage copies besides the identities and the peer
// book, which it always copies.
type SalvagePlan struct {
	// Identity is the name of the identity record the new store cannot do
	// without: if it cannot be read, Salvage fails with ErrIdentityLost
	// and leaves the damaged store where it is.
	Identity string
	// Settings are the setting scopes to copy.
	Settings []string
	// Logs picks the groups whose log is copied, entry by entry with its
	// result, in order; the entries are numbered again from 1 (nil: none).
	Logs func(group []byte) bool
	// KeyPackage picks the stored KeyPackages (by their value) whose
	// private keys are copied (nil: none). Only one meant to be used any
	// number of times (a last-resort KeyPackage) is safe to keep: an
	// older copy of a single-use one could be used twice.
	KeyPackage func(value []byte) bool
	// Finish, if set, runs on the new store once the records are copied,
	// before it takes the damaged store's place: what it writes is there
	// as surely as they are.
	Finish func(ctx context.Context, s *Store) error
}

// SalvageReport says what Salvage found and did.
type SalvageReport struct {
	// Damaged names the damaged table files and what is wrong with them.
	Damaged []string
	// MovedTo is where the damaged store directory now is.
	MovedTo string
	// Copied records by kind: identities, peers, settings, log entries.
	Identities, Peers, Settings, LogEntries int
	// Groups are the groups that had state in the damaged store, other
	// than those whose log the plan picks: none of their state is copied.
	Groups [][]byte
	// Unreadable counts records that were found but failed to read or to
	// pass their checksum, and key ranges whose listing stopped at a
	// damaged block; nothing of them is copied.
	Unreadable int
	// KeyPackages counts the KeyPackage private keys left out, and
	// KeyPackagesKept those copied (see SalvagePlan.KeyPackage).
	KeyPackages, KeyPackagesKept int
}

// salvaged are the records read from a damaged store.
type salvaged struct {
	raw  [][2][]byte         // identities, peers, settings: key, value
	logs map[string][]logRec // by group
	rep  *SalvageReport
}

type logRec struct {
	id, env, result []byte
}

// Salvage recovers what can be read safely from the store in dir, whose
// tables are damaged, into a new store sealed the same way (the same
// options as Open; a passphrase is used as given, not asked again). The
// new store takes dir's place; the damaged directory is renamed to
// dir.damaged-<UTC time> and kept as it is. It returns the new store, open.
//
// Salvage fails, leaving dir as it was, if the damaged store cannot be
// unlocked or read at all, or if plan.Identity cannot be read
// (ErrIdentityLost). It never panics on damaged files.
func Salvage(dir string, plan SalvagePlan, opts ...Option) (*Store, *SalvageReport, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, nil, err
	}
	defer clear(c.passphrase)
	dir = filepath.Clean(dir)
	lock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	locked := true
	defer func() {
		if locked {
			lock.release()
		}
	}()
	h, err := readHeader(dir)
	if err != nil {
		return nil, nil, err
	}
	dataKey, err := h.unlock(&c)
	if err != nil {
		return nil, nil, err
	}
	rec, err := salvageRead(dir, &c, dataKey, plan)
	if err != nil {
		return nil, nil, err
	}
	rep := rec.rep
	if plan.Identity != "" && !rec.has(identityKey(plan.Identity)) {
		return nil, rep, fmt.Errorf("%w: identity %q cannot be read from the damaged store; it is kept as it is at %s", ErrIdentityLost, plan.Identity, dir)
	}

	// The new store is made beside the old one and renamed into place once
	// complete, so a crash leaves either the damaged store in place or the
	// new one.
	tmp := dir + ".salvage"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, rep, fmt.Errorf("store: remove unfinished salvage: %w", err)
	}
	if err := writeSalvaged(tmp, &c, rec, plan.Finish); err != nil {
		os.RemoveAll(tmp)
		return nil, rep, err
	}
	moved, err := freeName(dir + ".damaged-" + time.Now().UTC().Format("20060102T150405Z"))
	if err != nil {
		return nil, rep, err
	}
	if err := os.Rename(dir, moved); err != nil {
		return nil, rep, fmt.Errorf("store: move the damaged store aside: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, rep, fmt.Errorf("store: put the salvaged store in place (the damaged one is at %s, the salvaged one at %s): %w", moved, tmp, err)
	}
	rep.MovedTo = moved
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, rep, err
	}
	lock.release()
	locked = false
	s, err := openConfig(dir, &c)
	if err != nil {
		return nil, rep, fmt.Errorf("store: open the salvaged store: %w", err)
	}
	return s, rep, nil
}

// FinishSalvage completes a Salvage that a crash interrupted between
// moving the damaged store aside and putting the new one in its place:
// if dir is missing and the new store beside it (dir.salvage, complete
// once the damaged store was moved) is there, it is renamed to dir. It
// reports whether it did so.
func FinishSalvage(dir string) (bool, error) {
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	tmp := dir + ".salvage"
	if _, err := os.Stat(filepath.Join(tmp, headerFile)); err != nil {
		return false, nil
	}
	if err := os.Rename(tmp, dir); err != nil {
		return false, fmt.Errorf("store: put the salvaged store in place: %w", err)
	}
	return true, syncDir(filepath.Dir(dir))
}

// freeName returns path, or path with a number appended if it exists.
func freeName(path string) (string, error) {
	for i := 1; i < 1000; i++ {
		p := path
		if i > 1 {
			p = fmt.Sprintf("%s-%d", path, i)
		}
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p, nil
		}
	}
	return "", fmt.Errorf("store: no free name for the damaged store beside %s", path)
}

func (r *salvaged) has(k []byte) bool {
	for _, kv := range r.raw {
		if bytes.Equal(kv[0], k) {
			return true
		}
	}
	return false
}

// salvageDir is the scratch directory, inside the damaged store, that holds
// the copies Salvage reads.
const salvageDir = "salvage.tmp"

// salvageRead reads from the damaged store in dir what plan picks.
func salvageRead(dir string, c *config, dataKey []byte, plan SalvagePlan) (*salvaged, error) {
	listed, ok := manifestTables(dir)
	if !ok {
		return nil, fmt.Errorf("%w: %s: the MANIFEST cannot be read, so no table can be found; nothing is salvaged", ErrCorrupt, dir)
	}
	rep := &SalvageReport{}
	o := badgerOptions(dir, c, dataKey)
	broken := map[uint64]bool{} // footer or index damaged: left out
	ids := make([]uint64, 0, len(listed))
	for id := range listed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		name := tableName(id)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			err = checkTableFooter(data)
		}
		if err != nil {
			broken[id] = true
			rep.Damaged = append(rep.Damaged, fmt.Sprintf("%s (%v; the whole table is lost)", name, err))
		}
	}
	for _, id := range ids {
		if broken[id] {
			continue
		}
		if err := verifyOneTable(dir, o, id, ids); err != nil {
			rep.Damaged = append(rep.Damaged, fmt.Sprintf("%s (%v; its sound blocks are read)", tableName(id), err))
		}
	}

	shadow := filepath.Join(dir, salvageDir)
	defer os.RemoveAll(shadow)
	db, err := openSalvageView(dir, shadow, o, broken, ids)
	if err != nil {
		// A table with damaged blocks badger cannot even open: leave out
		// every damaged table.
		for _, d := range rep.Damaged {
			if id, ok := parseTableName(d); ok {
				broken[id] = true
			}
		}
		if db, err = openSalvageView(dir, shadow, o, broken, ids); err != nil {
			return nil, err
		}
	}
	rec := &salvaged{logs: map[string][]logRec{}, rep: rep}
	func() {
		defer func() {
			if r := recover(); r != nil {
				rep.Unreadable++ // db is in an unknown state: leave it
				db = nil
			}
		}()
		rec.read(db, plan)
	}()
	if db != nil {
		closeQuietly(db)
	}
	return rec, nil
}

func tableName(id uint64) string { return fmt.Sprintf("%06d.sst", id) }

func parseTableName(s string) (uint64, bool) {
	name, _, ok := strings.Cut(s, ".sst")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseUint(name, 10, 64)
	return id, err == nil
}

// closeQuietly closes a badger that read damaged tables; a panic there is
// recovered and the badger left as it is.
func closeQuietly(db *badger.DB) {
	defer func() { recover() }()
	db.Close()
}

// verifyOneTable checks every block of table id alone, in a read-only
// view of the store's key registry and a MANIFEST that lists that table
// only.
func verifyOneTable(dir string, o badger.Options, id uint64, all []uint64) (err error) {
	shadow := filepath.Join(dir, verifyDir)
	if err := os.RemoveAll(shadow); err != nil {
		return fmt.Errorf("store: remove scratch directory: %w", err)
	}
	defer os.RemoveAll(shadow)
	drop := map[uint64]bool{}
	for _, other := range all {
		drop[other] = other != id
	}
	if err := makeShadow(dir, shadow, drop, false); err != nil {
		return err
	}
	o = o.WithDir(shadow).WithValueDir(shadow).WithReadOnly(true).WithBypassLockGuard(true)
	db, err := recoverOpen(dir, o)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("a block cannot be read (badger: %v)", r)
			return
		}
		db.Close()
	}()
	if err := checkNoTableSkipped(shadow, db); err != nil {
		return errors.New("its blocks fail their checksums")
	}
	if err := db.VerifyChecksum(); err != nil {
		return errors.New("a block fails its checksum")
	}
	return nil
}

// openSalvageView makes in shadow copies of the files of the store in dir,
// without the tables in drop, and opens them as a writable badger with
// compactions off (see the comment at the top of this file).
func openSalvageView(dir, shadow string, o badger.Options, drop map[uint64]bool, all []uint64) (*badger.DB, error) {
	if err := os.RemoveAll(shadow); err != nil {
		return nil, fmt.Errorf("store: remove scratch directory: %w", err)
	}
	d := map[uint64]bool{}
	for _, id := range all {
		d[id] = drop[id]
	}
	if err := makeShadow(dir, shadow, d, true); err != nil {
		return nil, err
	}
	o = o.WithDir(shadow).WithValueDir(shadow).WithBypassLockGuard(true).
		WithNumCompactors(0).WithCompactL0OnClose(false).WithSyncWrites(false)
	return recoverOpen(dir, o)
}

// makeShadow fills the new directory shadow with the MANIFEST and key
// registry of dir, the MANIFEST followed by a DELETE change for each table
// in drop, and copies of the tables that drop lists as false (and, with
// logs, of the value and memtable logs). Tables are copied, not linked:
// a writable badger truncates a table file it drops.
func makeShadow(dir, shadow string, drop map[uint64]bool, logs bool) error {
	if err := os.Mkdir(shadow, 0o700); err != nil {
		return fmt.Errorf("store: create scratch directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: read directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".sst"):
			id, ok := parseTableName(name)
			if d, listed := drop[id]; !ok || !listed || d {
				continue
			}
		case name == badger.KeyRegistryFileName:
		case name == badger.ManifestFilename:
			if err := copyManifest(filepath.Join(dir, name), filepath.Join(shadow, name), drop); err != nil {
				return err
			}
			continue
		case logs && (strings.HasSuffix(name, ".vlog") || strings.HasSuffix(name, ".mem")):
		default:
			continue
		}
		if err := copyFile(filepath.Join(dir, name), filepath.Join(shadow, name)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("store: copy %s: %w", filepath.Base(from), err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("store: copy %s: %w", filepath.Base(from), err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("store: copy %s: %w", filepath.Base(from), err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("store: copy %s: %w", filepath.Base(from), err)
	}
	return nil
}

// copyManifest copies a MANIFEST and appends to it one change set that
// deletes the tables drop marks true, in badger's format: a 4-byte length,
// a 4-byte CRC-32C of the change set, the change set (a protobuf).
func copyManifest(from, to string, drop map[uint64]bool) error {
	f, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("store: read MANIFEST: %w", err)
	}
	defer f.Close()
	// A torn last change (a crash while appending) is cut off first, as
	// badger would, so that the DELETE change follows a whole one.
	_, valid, err := badger.ReplayManifestFile(f, externalMagic, badger.DefaultOptions("").WithLogger(nil))
	if err != nil {
		return fmt.Errorf("%w: MANIFEST: %w", ErrCorrupt, err)
	}
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("store: read MANIFEST: %w", err)
	}
	data = data[:min(valid, int64(len(data)))]
	var set pb.ManifestChangeSet
	for id, d := range drop {
		if d {
			set.Changes = append(set.Changes, &pb.ManifestChange{Id: id, Op: pb.ManifestChange_DELETE})
		}
	}
	if len(set.Changes) > 0 {
		buf, err := proto.Marshal(&set)
		if err != nil {
			return fmt.Errorf("store: MANIFEST change: %w", err)
		}
		data = binary.BigEndian.AppendUint32(data, uint32(len(buf)))
		data = binary.BigEndian.AppendUint32(data, crc32.Checksum(buf, y.CastagnoliCrcTable))
		data = append(data, buf...)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		return fmt.Errorf("store: copy MANIFEST: %w", err)
	}
	return nil
}

// read collects what plan picks from db. Each listing runs under its own
// recover (see safeScan).
func (r *salvaged) read(db *badger.DB, plan SalvagePlan) {
	keep := func(k, v []byte) { r.raw = append(r.raw, [2][]byte{bytes.Clone(k), v}) }
	safeScan(db, r.rep, []byte{nsIdentity}, func(k, v []byte) {
		keep(k, v)
		r.rep.Identities++
	})
	safeScan(db, r.rep, []byte{nsPeer}, func(k, v []byte) {
		keep(k, v)
		r.rep.Peers++
	})
	for _, scope := range plan.Settings {
		if checkName("setting scope", scope, maxIDLen) != nil {
			continue
		}
		safeScan(db, r.rep, key([]byte{nsSetting}, lp([]byte(scope))), func(k, v []byte) {
			keep(k, v)
			r.rep.Settings++
		})
	}
	safeScan(db, r.rep, []byte{nsKeyPackage}, func(k, v []byte) {
		if plan.KeyPackage != nil && plan.KeyPackage(v) {
			keep(k, v)
			r.rep.KeyPackagesKept++
			return
		}
		r.rep.KeyPackages++
	})
	// Groups are found in their index and, should the index be unreadable,
	// by their keys.
	found := map[string]bool{}
	var groups [][]byte
	add := func(g []byte) {
		if len(g) > 0 && len(g) <= maxIDLen && !found[string(g)] {
			found[string(g)] = true
			groups = append(groups, bytes.Clone(g))
		}
	}
	safeScan(db, r.rep, []byte{nsGroupIndex}, func(k, v []byte) { add(k[1:]) })
	safeGroups(db, r.rep, add)
	for _, g := range groups {
		if plan.Logs == nil || !plan.Logs(g) {
			r.rep.Groups = append(r.rep.Groups, g)
			continue
		}
		r.readLog(db, g)
	}
}

// readLog collects the log entries of group g, with their results.
func (r *salvaged) readLog(db *badger.DB, g []byte) {
	p := logPrefix(g)
	var out []logRec
	var last uint64
	safeScan(db, r.rep, p, func(k, v []byte) {
		if len(k) != len(p)+9 {
			r.rep.Unreadable++
			return
		}
		seq := binary.BigEndian.Uint64(k[len(p):])
		switch k[len(k)-1] {
		case logEntry:
			id, env, err := decodeLogEntry(v)
			if err != nil || len(id) == 0 {
				r.rep.Unreadable++
				return
			}
			out = append(out, logRec{id: id, env: env})
			last = seq
		case logResult:
			if n := len(out); n > 0 && last == seq {
				out[n-1].result = v
			}
		}
	})
	r.logs[string(g)] = out
	r.rep.LogEntries += len(out)
}

// safeGroups calls fn with every group that has keys, skipping from one
// group's keys to the next.
func safeGroups(db *badger.DB, rep *SalvageReport, fn func(g []byte)) {
	defer func() {
		if r := recover(); r != nil {
			rep.Unreadable++
		}
	}()
	// Badger's iterator drops a table for the rest of a listing once it
	// meets a damaged block there, but a new Seek reads the table again
	// from the block it lands in: so every length of group id is sought
	// on its own, and every group from its first key.
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{nsGroup}})
		defer it.Close()
		for l := 1; l <= maxIDLen; l++ {
			it.Seek([]byte{nsGroup, byte(l)})
			for it.Valid() {
				k := it.Item().Key()
				if len(k) < 2 || int(k[1]) != l || l > len(k)-2 {
					break
				}
				g := k[2 : 2+l]
				fn(g)
				next, ok := successor(groupPrefix(g))
				if !ok {
					break
				}
				it.Seek(next)
			}
		}
		return nil
	})
	if err != nil {
		rep.Unreadable++
	}
}

// successor returns the first key after every key that starts with p.
func successor(p []byte) ([]byte, bool) {
	p = bytes.Clone(p)
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] < 0xff {
			p[i]++
			return p[:i+1], true
		}
	}
	return nil, false
}

// safeScan calls fn with every key under prefix and its value, checked.
// A value that cannot be read is counted and skipped; a listing that
// stops on damage (a panic, or badger's iterator giving up) is counted
// once.
func safeScan(db *badger.DB, rep *SalvageReport, prefix []byte, fn func(k, v []byte)) {
	defer func() {
		if r := recover(); r != nil {
			rep.Unreadable++
		}
	}()
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.Valid(); it.Next() {
			item := it.Item()
			v, err := readValue(item)
			if err != nil {
				rep.Unreadable++
				continue
			}
			fn(item.Key(), v)
		}
		return nil
	})
	if err != nil {
		rep.Unreadable++
	}
}

// readValue is valueOf under a recover.
func readValue(item *badger.Item) (v []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: value unreadable (badger: %v)", ErrCorrupt, r)
		}
	}()
	return valueOf(item)
}

// writeSalvaged makes a new store in dir, sealed as c says, with the
// records of rec, runs finish on it, and closes it.
func writeSalvaged(dir string, c *config, rec *salvaged, finish func(context.Context, *Store) error) error {
	s, err := openConfig(dir, c)
	if err != nil {
		return fmt.Errorf("store: create the salvaged store: %w", err)
	}
	ctx := context.Background()
	const chunk = 1000
	for i := 0; i < len(rec.raw); i += chunk {
		part := rec.raw[i:min(i+chunk, len(rec.raw))]
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, kv := range part {
				if err := set(txn, kv[0], kv[1]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.Close()
			return fmt.Errorf("store: write the salvaged store: %w", err)
		}
	}
	for g, entries := range rec.logs {
		seen := map[string]bool{} // a log read in an older version may name an entry twice: keep the first
		b := s.NewBatch()
		for i, e := range entries {
			if !seen[string(e.id)] {
				seen[string(e.id)] = true
				b.AppendLog([]byte(g), LogEntry{ID: e.id, Envelope: e.env, Result: e.result})
			}
			if b.Len() < chunk && i < len(entries)-1 {
				continue
			}
			if err := s.Write(ctx, b); err != nil {
				s.Close()
				return fmt.Errorf("store: write the salvaged store: %w", err)
			}
			b = s.NewBatch()
		}
	}
	if finish != nil {
		if err := finish(ctx, s); err != nil {
			s.Close()
			return fmt.Errorf("store: finish the salvaged store: %w", err)
		}
	}
	if err := s.Close(); err != nil {
		return err
	}
	return syncDir(dir)
}
