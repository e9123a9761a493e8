package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// Protection is how a store's data key is sealed (see the PARLEY header
// in keyring.go).
type Protection uint8

const (
	// Unencrypted is a store made WithoutEncryption.
	Unencrypted Protection = modePlain
	// SealedByKeyFile is a store sealed under the key in a key file
	// (WithKeyFile): whoever can read that file can read the store.
	SealedByKeyFile Protection = modeKeyFile
	// SealedByPassphrase is a store sealed under a key derived from a
	// passphrase by argon2id (WithPassphrase).
	SealedByPassphrase Protection = modePassphrase
)

func (p Protection) String() string {
	switch p {
	case Unencrypted:
		return "unencrypted"
	case SealedByKeyFile:
		return "key file"
	case SealedByPassphrase:
		return "passphrase (argon2id)"
	}
	return fmt.Sprintf("Protection(%d)", uint8(p))
}

// ReadProtection tells how the store in dir is sealed, from its header
// alone: it takes no lock and needs no key, so it works while another
// process has the store open. A directory without a header gives an error
// wrapping ErrNotStore (or fs.ErrNotExist if there is no header file).
func ReadProtection(dir string) (Protection, error) {
	data, err := os.ReadFile(filepath.Join(dir, headerFile))
	if err != nil {
		return 0, fmt.Errorf("store: read header: %w", err)
	}
	h, err := parseHeader(data)
	if err != nil {
		return 0, err
	}
	return Protection(h.mode), nil
}

// Protection tells how the open store is sealed.
func (s *Store) Protection() Protection { return s.protection }

// protectionOf is the protection a store opened with c has (Open checks
// that it matches the header).
func protectionOf(c *config) Protection {
	switch {
	case c.noEncryption:
		return Unencrypted
	case c.keyFile != "":
		return SealedByKeyFile
	}
	return SealedByPassphrase
}
