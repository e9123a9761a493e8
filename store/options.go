package store

import (
	"fmt"
	"log/slog"
	"time"
)

// Option configures Open.
type Option func(*config) error

type config struct {
	passphrase    []byte
	keyFile       string
	noEncryption  bool
	logger        *slog.Logger
	gcInterval    time.Duration
	gcRatio       float64
	migrations    []Migration
	kdf           kdfParams
	syncWrites    bool
	memTableSize  int64
	vlogFileSize  int64
	cacheSize     int64
	schemaVersion uint32 // for tests of migrations; 0 means currentSchema
}

func defaultConfig() config {
	return config{
		logger:       slog.New(slog.DiscardHandler),
		gcInterval:   10 * time.Minute,
		gcRatio:      0.5,
		kdf:          defaultKDF,
		syncWrites:   true,
		memTableSize: 32 << 20,
		vlogFileSize: 64 << 20,
		cacheSize:    32 << 20,
	}
}

// WithPassphrase protects the data key with a key derived from the
// passphrase by argon2id. Open keeps no reference to the slice after it
// returns; the caller may wipe it.
func WithPassphrase(p []byte) Option {
	return func(c *config) error {
		if len(p) == 0 {
			return fmt.Errorf("%w: empty passphrase", ErrInvalidArgument)
		}
		c.passphrase = append([]byte(nil), p...)
		return nil
	}
}

// WithKeyFile protects the data key with the 32-byte key in the file at
// path. When Open creates a new store and the file does not exist, it
// creates the file (mode 0600) with a random key. Keep the key file away
// from the database directory (another disk, a hardware token's mount...):
// whoever holds both reads everything.
func WithKeyFile(path string) Option {
	return func(c *config) error {
		if path == "" {
			return fmt.Errorf("%w: empty key file path", ErrInvalidArgument)
		}
		c.keyFile = path
		return nil
	}
}

// WithoutEncryption stores everything in plain text. Meant for tests and
// benchmarks; a node must not use it.
func WithoutEncryption() Option {
	return func(c *config) error {
		c.noEncryption = true
		return nil
	}
}

// WithLogger sets the logger for the store's own messages and badger's
// (badger's informational messages are logged at debug level). The default
// discards everything. Keys and values are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidArgument)
		}
		c.logger = l
		return nil
	}
}

// WithGCInterval sets how often the background value-log garbage collection
// runs (default 10 minutes); 0 turns it off (CollectGarbage still works).
func WithGCInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: negative GC interval", ErrInvalidArgument)
		}
		c.gcInterval = d
		return nil
	}
}

// WithMigrations adds migrations Open may run on a database of an older
// schema version (see Migration).
func WithMigrations(m ...Migration) Option {
	return func(c *config) error {
		for _, x := range m {
			if x.Migrate == nil {
				return fmt.Errorf("%w: migration from version %d has no function", ErrInvalidArgument, x.From)
			}
		}
		c.migrations = append(c.migrations, m...)
		return nil
	}
}

// withKDF sets the argon2id parameters used when a store is created. Only
// tests use it, to make key derivation cheap.
func withKDF(p kdfParams) Option {
	return func(c *config) error {
		c.kdf = p
		return nil
	}
}

// withSchemaVersion makes Open write and expect another schema version than
// this release's. Only tests use it.
func withSchemaVersion(v uint32) Option {
	return func(c *config) error {
		c.schemaVersion = v
		return nil
	}
}

// withSizes sets badger's memtable and value-log file sizes. Only tests use
// it, to reach flushes, compactions and value-log rotation with little data.
func withSizes(memTable, vlogFile int64) Option {
	return func(c *config) error {
		c.memTableSize, c.vlogFileSize = memTable, vlogFile
		return nil
	}
}
