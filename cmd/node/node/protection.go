package node

import (
	"fmt"
	"path/filepath"

	"github.com/parley-p2p/parley/store"
)

// The protections of a StoreSeal.
const (
	SealPassphrase = "passphrase" // argon2id of a passphrase
	SealKeyFile    = "key_file"   // a random key in DIR/key
	SealNone       = "none"       // unencrypted (tests only)
)

// StoreSeal tells how a node's store is sealed at rest, for status.
type StoreSeal struct {
	// Protection is SealPassphrase, SealKeyFile or SealNone.
	Protection string `json:"protection"`
	// KeyFile is the key file's path when Protection is "key_file".
	KeyFile string `json:"key_file,omitempty"`
	// Summary says it in words: "passphrase (argon2id)", or "key file
	// DIR/key (readable by anyone who can copy the directory)".
	Summary string `json:"summary"`
}

// KeyFile returns the path of the key file of the data directory dir
// (used only by a store made without a passphrase).
func KeyFile(dir string) string { return filepath.Join(dir, keyFileName) }

// ReadStoreSeal tells how the store of the data directory dir is sealed,
// from the store's header alone: it needs no key and works while a daemon
// has the store open.
func ReadStoreSeal(dir string) (StoreSeal, error) {
	p, err := store.ReadProtection(filepath.Join(dir, storeDirName))
	if err != nil {
		return StoreSeal{}, fmt.Errorf("%w (%s): %w", ErrNotInitialized, dir, err)
	}
	return storeSeal(dir, p), nil
}

// StoreSeal tells how the node's store is sealed.
func (n *Node) StoreSeal() StoreSeal { return storeSeal(n.cfg.Dir, n.st.Protection()) }

func storeSeal(dir string, p store.Protection) StoreSeal {
	switch p {
	case store.SealedByPassphrase:
		return StoreSeal{Protection: SealPassphrase, Summary: "passphrase (argon2id)"}
	case store.SealedByKeyFile:
		kf := KeyFile(dir)
		return StoreSeal{Protection: SealKeyFile, KeyFile: kf,
			Summary: "key file " + kf + " (readable by anyone who can copy the directory)"}
	}
	return StoreSeal{Protection: SealNone, Summary: "none (unencrypted)"}
}
