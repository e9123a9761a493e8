//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ownLock says that the store locks its directory itself (and tells badger
// not to), so a locked directory is recognized before any file is read.
const ownLock = true

// dirLock is an exclusive flock on the store directory itself. The kernel
// drops it when the process dies, so a killed node never leaves a stale
// lock behind.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("store: open directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("store: lock directory: %w", err)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}

// checkKeyFileMode refuses a key file that others than its owner may read
// or write, as ssh does with private keys.
func checkKeyFileMode(fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("mode %04o gives access to others than its owner (want 0600)", perm)
	}
	return nil
}
