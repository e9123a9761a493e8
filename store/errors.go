package store

import (
	"errors"
	"fmt"
)

// Errors callers branch on. Every error the package returns either is one of
// these or wraps one (test with errors.Is), except plain I/O and badger
// errors, which are wrapped with the operation that failed.
var (
	// ErrNotFound reports that the requested record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrDuplicate reports that a log entry with the same ID already exists
	// in the group. The whole Write was rejected; nothing was written.
	// errors.As with *DuplicateError gives the existing sequence number.
	ErrDuplicate = errors.New("store: duplicate log entry")
	// ErrInvalidArgument reports an empty or oversized key component.
	ErrInvalidArgument = errors.New("store: invalid argument")
	// ErrClosed reports use of a Store after Close.
	ErrClosed = errors.New("store: closed")
	// ErrTooLarge reports a Write too large for one transaction.
	ErrTooLarge = errors.New("store: write too large for one transaction")
	// ErrNoSpace reports a write refused because the store's file system
	// has too little free space for it to be made safely (see space.go).
	// Nothing was written; the store stays usable, and the write may be
	// tried again once space is freed.
	ErrNoSpace = errors.New("store: not enough free disk space")

	// ErrLocked reports that another process (or another Store in this
	// process) has the directory open.
	ErrLocked = errors.New("store: locked by another process")
	// ErrNoKey reports that Open was given neither a passphrase, nor a key
	// file, nor WithoutEncryption.
	ErrNoKey = errors.New("store: no passphrase or key file given")
	// ErrWrongPassphrase reports that the passphrase does not unlock the
	// data key (or that the store is protected by a key file instead).
	ErrWrongPassphrase = errors.New("store: wrong passphrase")
	// ErrWrongKeyFile reports that the key file does not unlock the data key
	// (or that the store is protected by a passphrase instead).
	ErrWrongKeyFile = errors.New("store: wrong key file")
	// ErrNeedsPassphrase reports a store protected by a passphrase opened
	// with a key file; it comes wrapped together with ErrWrongKeyFile.
	ErrNeedsPassphrase = errors.New("store: the store is protected by a passphrase")
	// ErrNeedsKeyFile reports a store protected by a key file opened with a
	// passphrase; it comes wrapped together with ErrWrongPassphrase.
	ErrNeedsKeyFile = errors.New("store: the store is protected by a key file")
	// ErrBadKeyFile reports a key file of the wrong size or one that others
	// may read.
	ErrBadKeyFile = errors.New("store: unusable key file")
	// ErrEncrypted reports an encrypted store opened WithoutEncryption.
	ErrEncrypted = errors.New("store: database is encrypted")
	// ErrNotEncrypted reports an unencrypted store opened with a key.
	ErrNotEncrypted = errors.New("store: database is not encrypted")
	// ErrNotStore reports a directory that holds something other than a
	// Parley store, or a store whose PARLEY header is missing or damaged.
	ErrNotStore = errors.New("store: not a parley store")
	// ErrCorrupt reports damaged database files found while opening.
	ErrCorrupt = errors.New("store: database corrupted")
	// ErrDamagedTable reports, wrapped together with ErrCorrupt, that Open
	// found a damaged table file: Salvage can then recover what is
	// readable.
	ErrDamagedTable = errors.New("store: a table file is damaged")
	// ErrIdentityLost reports that Salvage could not read the identity a
	// new store cannot do without; the damaged store is left in place.
	ErrIdentityLost = errors.New("store: identity unreadable")
	// ErrSchemaTooNew reports a database written by a newer release.
	ErrSchemaTooNew = errors.New("store: database schema newer than this release")
	// ErrSchemaTooOld reports a database older than any migration known.
	ErrSchemaTooOld = errors.New("store: no migration from database schema")
)

// DuplicateError is returned (wrapped) when a Write appends a log entry whose
// ID the group's log already holds, or holds twice in the same Write.
type DuplicateError struct {
	Group []byte
	ID    []byte
	// Seq is the sequence number of the entry already logged (0 if the
	// duplicate is within the rejected Write itself).
	Seq uint64
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("%v: group %x id %x (logged as seq %d)", ErrDuplicate, prefix(e.Group), prefix(e.ID), e.Seq)
}

func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// prefix bounds what an error message or log line shows of an identifier.
func prefix(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}
