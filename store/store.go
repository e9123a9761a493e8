package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Store is a node's durable state in one badger database. All methods are
// safe for concurrent use.
type Store struct {
	dir     string
	db      *badger.DB
	log     *slog.Logger
	lock    *dirLock
	gcRatio float64
	// space refuses writes the file system may not have room for
	// (space.go); vlogFileSize is what a value-log rewrite may take.
	space        *spaceGuard
	vlogFileSize int64

	protection Protection

	mu     sync.RWMutex // held for reading by every operation, for writing by Close
	closed bool

	commits commitQueue // see commit.go

	gcStop chan struct{}
	gcDone chan struct{}
}

// Badger tuning. Small memtables and value-log files keep deleted records
// from lingering long in files that are not yet compacted or collected (see
// README.md); values above valueThreshold (epoch snapshots) go to the value
// log, small records (log entries, keys, settings) stay in the LSM tree.
const (
	externalMagic     = 0x504c // "PL": badger refuses a database made by another program
	valueThreshold    = 16 << 10
	indexCacheSize    = 16 << 20
	keyRotationPeriod = 10 * 24 * time.Hour
)

// Open opens the store in dir, creating the directory (mode 0700) and a new
// store in it if it is empty or missing. Exactly one of WithPassphrase,
// WithKeyFile and WithoutEncryption must be given.
//
// Open refuses, with an error and without writing anything, a directory
// that another process holds (ErrLocked), a non-empty directory that is not
// a store (ErrNotStore), a wrong passphrase or key file
// (ErrWrongPassphrase, ErrWrongKeyFile) and a database of a newer schema
// (ErrSchemaTooNew). Damaged database files give an error, never a panic.
func Open(dir string, opts ...Option) (*Store, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	defer clear(c.passphrase)
	return openConfig(dir, &c)
}

// newConfig applies opts and checks that exactly one way to seal the store
// is given.
func newConfig(opts []Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if err := o(&c); err != nil {
			return config{}, err
		}
	}
	modes := 0
	for _, set := range []bool{c.passphrase != nil, c.keyFile != "", c.noEncryption} {
		if set {
			modes++
		}
	}
	switch {
	case modes == 0:
		return config{}, ErrNoKey
	case modes > 1:
		return config{}, fmt.Errorf("%w: give only one of a passphrase, a key file, or no encryption", ErrInvalidArgument)
	}
	return c, nil
}

// openConfig is Open with its options applied.
func openConfig(dir string, c *config) (*Store, error) {

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s, err := open(dir, c, lock)
	if err != nil {
		lock.release()
		return nil, err
	}
	return s, nil
}

func open(dir string, c *config, lock *dirLock) (*Store, error) {
	dataKey, err := prepareDir(dir, c)
	if err != nil {
		return nil, err
	}
	if err := removeEmptyLogs(dir, c.logger); err != nil {
		return nil, err
	}
	if err := checkTables(dir); err != nil {
		return nil, err
	}
	db, err := openBadger(dir, c, dataKey)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:     dir,
		db:      db,
		log:     c.logger,
		lock:    lock,
		gcRatio: c.gcRatio,
		space:   newSpaceGuard(dir, c.memTableSize, c.vlogFileSize),
		gcStop:  make(chan struct{}),
		gcDone:  make(chan struct{}),

		protection:   protectionOf(c),
		vlogFileSize: c.vlogFileSize,
	}
	if err := s.checkSchema(c); err != nil {
		db.Close()
		return nil, err
	}
	go s.gcLoop(c.gcInterval)
	return s, nil
}

// prepareDir reads the header of an existing store and unlocks its data
// key, or creates the header of a new store in an empty directory.
func prepareDir(dir string, c *config) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: read directory: %w", err)
	}
	var hasHeader, hasTmp bool
	var other []string
	for _, e := range entries {
		switch e.Name() {
		case headerFile:
			hasHeader = true
		case headerFile + ".tmp":
			hasTmp = true
		default:
			other = append(other, e.Name())
		}
	}
	if hasHeader {
		h, err := readHeader(dir)
		if err != nil {
			return nil, err
		}
		return h.unlock(c)
	}
	if len(other) > 0 {
		if isBadgerFile(other[0]) {
			return nil, fmt.Errorf("%w: %s holds a database but no %s header (lost, or not made by Parley)", ErrNotStore, dir, headerFile)
		}
		return nil, fmt.Errorf("%w: %s is not empty (%s)", ErrNotStore, dir, other[0])
	}
	if hasTmp {
		// A crash while creating the store left a header that was never
		// renamed into place: nothing else was written after it.
		if err := os.Remove(filepath.Join(dir, headerFile+".tmp")); err != nil {
			return nil, fmt.Errorf("store: remove unfinished header: %w", err)
		}
	}
	h, dataKey, err := newHeader(c, rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := writeHeader(dir, h); err != nil {
		return nil, err
	}
	c.logger.Info("store: created", "dir", dir, "encrypted", h.mode != modePlain)
	return dataKey, nil
}

func isBadgerFile(name string) bool {
	switch name {
	case "MANIFEST", "KEYREGISTRY", "DISCARD", "LOCK":
		return true
	}
	for _, ext := range []string{".sst", ".vlog", ".mem"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// removeEmptyLogs deletes zero-length value-log and memtable files. Badger
// (v4.9.6) creates such a file, then sizes it; a crash in between leaves a
// file of zero bytes that makes every later badger.Open fail ("Create a new
// file"). A zero-length file holds no data and nothing refers to it.
func removeEmptyLogs(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: read directory: %w", err)
	}
	removed := false
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(name, ".vlog") || strings.HasSuffix(name, ".mem")) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("store: read directory: %w", err)
		}
		if fi.Size() != 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("store: remove empty log file left by a crash: %w", err)
		}
		log.Warn("store: removed empty log file left by a crash", "file", name)
		removed = true
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

// badgerOptions are the badger options of the store in dir.
func badgerOptions(dir string, c *config, dataKey []byte) badger.Options {
	o := badger.DefaultOptions(dir).
		WithLogger(newBadgerLogger(c.logger)).
		WithSyncWrites(c.syncWrites).
		WithMemTableSize(c.memTableSize).
		WithNumMemtables(3).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(c.vlogFileSize).
		WithBlockCacheSize(c.cacheSize).
		WithIndexCacheSize(indexCacheSize).
		WithNumCompactors(2).
		WithMetricsEnabled(false).
		WithExternalMagic(externalMagic).
		WithChecksumVerificationMode(options.OnBlockRead).
		WithVerifyValueChecksum(true).
		WithBypassLockGuard(ownLock)
	if dataKey != nil {
		o = o.WithEncryptionKey(dataKey).WithEncryptionKeyRotationDuration(keyRotationPeriod)
	}
	return o
}

// openBadger verifies the tables of the database (see verifyTables), then
// opens it.
func openBadger(dir string, c *config, dataKey []byte) (*badger.DB, error) {
	o := badgerOptions(dir, c, dataKey)
	if err := verifyTables(dir, o, c.logger); err != nil {
		return nil, err
	}
	return recoverOpen(dir, o)
}

// verifyDir is the scratch directory, inside the store directory, where
// verifyTables opens a read-only view of the tables.
const verifyDir = "verify.tmp"

// verifyTables checks every block of every table before the database is
// opened for real. Badger reads blocks in goroutines of its own
// (compactions, started by Open) and panics there on a damaged block,
// where no recover reaches. So the tables are first opened read-only, in a
// scratch directory holding hard links to them and copies of MANIFEST and
// KEYREGISTRY (a read-only badger refuses a memtable log that needs the
// truncation every crash requires, and it deletes tables its manifest does
// not list, which must not happen to the real ones), and verified there in
// this goroutine, where a panic is recovered. Nothing of the store is
// written.
func verifyTables(dir string, o badger.Options, log *slog.Logger) (err error) {
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return nil // a new database
	}
	shadow := filepath.Join(dir, verifyDir)
	if err := os.RemoveAll(shadow); err != nil {
		return fmt.Errorf("store: remove scratch directory: %w", err)
	}
	if err := os.Mkdir(shadow, 0o700); err != nil {
		return fmt.Errorf("store: create scratch directory: %w", err)
	}
	defer os.RemoveAll(shadow)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: read directory: %w", err)
	}
	for _, e := range entries {
		from, to := filepath.Join(dir, e.Name()), filepath.Join(shadow, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".sst"):
			if err := os.Link(from, to); err != nil {
				log.Warn("store: cannot verify tables before opening (no hard links here)", "err", err)
				return nil
			}
		case e.Name() == "MANIFEST" || e.Name() == badger.KeyRegistryFileName:
			data, err := os.ReadFile(from)
			if err != nil {
				return fmt.Errorf("store: read %s: %w", e.Name(), err)
			}
			if err := os.WriteFile(to, data, 0o600); err != nil {
				return fmt.Errorf("store: copy %s: %w", e.Name(), err)
			}
		}
	}
	o = o.WithDir(shadow).WithValueDir(shadow).WithReadOnly(true).WithBypassLockGuard(true)
	db, err := recoverOpen(dir, o)
	if err != nil {
		if strings.Contains(err.Error(), "Opening table") {
			// A table badger cannot open (its last block unreadable).
			return fmt.Errorf("%w: %w", ErrDamagedTable, err)
		}
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %w: %s (badger: %v)", ErrCorrupt, ErrDamagedTable, dir, r)
			return // db is in an unknown state: leave it
		}
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("store: close after verification: %w", cerr)
		}
	}()
	if err := checkNoTableSkipped(shadow, db); err != nil {
		return err
	}
	if err := db.VerifyChecksum(); err != nil {
		return fmt.Errorf("%w: %w: %s: %w", ErrCorrupt, ErrDamagedTable, dir, err)
	}
	return nil
}

func recoverOpen(dir string, o badger.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: badger panicked while opening %s: %v", ErrCorrupt, dir, r)
		}
	}()
	db, err = badger.Open(o)
	if err != nil {
		return nil, badgerOpenError(dir, err)
	}
	return db, nil
}

// badgerOpenError classifies an error of badger.Open. Badger flattens the
// errors it wraps into text, so the text is all there is to go by.
func badgerOpenError(dir string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Another process is using this Badger database"):
		return fmt.Errorf("%w: %s", ErrLocked, dir)
	case errors.Is(err, badger.ErrEncryptionKeyMismatch) || strings.Contains(msg, badger.ErrEncryptionKeyMismatch.Error()):
		return fmt.Errorf("%w: data key in %s does not match the database's key registry", ErrCorrupt, headerFile)
	}
	for _, sign := range []string{"checksum", "Checksum", "magic", "Magic", "corrupt", "Corrupt", "EOF", "truncat", "Truncat", "manifest", "MANIFEST", "ErrTruncateNeeded"} {
		if strings.Contains(msg, sign) {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, dir, err)
		}
	}
	return fmt.Errorf("store: open %s: %w", dir, err)
}

// Close stops background work and closes the database. It waits for
// operations in progress; later calls return ErrClosed. Closing twice is
// not an error.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.gcStop)
	<-s.gcDone
	err := s.db.Close()
	if lerr := s.lock.release(); err == nil && lerr != nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// enter takes the read side of s.mu for one operation; the caller must
// RUnlock it.
// Size returns the bytes the store's files take on disk (their allocated
// blocks): its LSM tree (.sst), its value log (.vlog) and the rest
// (memtable, manifest, key registry, header). It reads the directory
// (badger's own figures stayed 0 for a daemon's store).
func (s *Store) Size() (lsm, vlog, other int64, err error) {
	if err := s.enter(); err != nil {
		return 0, 0, 0, err
	}
	defer s.mu.RUnlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("store: size: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		n := diskBytes(info)
		switch filepath.Ext(e.Name()) {
		case ".sst":
			lsm += n
		case ".vlog":
			vlog += n
		default:
			other += n
		}
	}
	return lsm, vlog, other, nil
}

func (s *Store) enter() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}
