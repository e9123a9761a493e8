package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// maxSocketPath is the longest unix socket path the kernel takes
// (sun_path, less its terminating NUL).
func maxSocketPath() int {
	if runtime.GOOS == "linux" {
		return 107
	}
	return 103
}

// CheckSocketPath reports whether a unix socket can be made at path: the
// system limits its length. 'parley init' checks it before it makes a
// data directory whose daemon could not listen.
func CheckSocketPath(path string) error {
	if len(path) > maxSocketPath() {
		return fmt.Errorf("api: socket path %s is too long (%d bytes; the limit is %d): use a shorter data directory", path, len(path), maxSocketPath())
	}
	return nil
}

// listenUnix listens on a unix socket at path that only this user can
// connect to. The socket is made under a temporary name, given mode 0600
// and then linked to path, so path never exists with a looser mode, and
// linking fails rather than replace a socket another server made in the
// meantime. cleanup removes path if it is still this socket.
func listenUnix(path string) (ln *net.UnixListener, cleanup func() error, err error) {
	if err := CheckSocketPath(path); err != nil {
		return nil, nil, err
	}
	if err := clearStale(path); err != nil {
		return nil, nil, err
	}
	var suffix [4]byte
	rand.Read(suffix[:])
	tmp := filepath.Join(filepath.Dir(path), ".s"+hex.EncodeToString(suffix[:]))
	ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("api: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	defer func() {
		os.Remove(tmp)
		if err != nil {
			ln.Close()
		}
	}()
	if err := os.Chmod(tmp, 0o600); err != nil {
		return nil, nil, fmt.Errorf("api: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, nil, fmt.Errorf("%w (it answers on %s)", ErrAlreadyRunning, path)
		}
		// A file system without hard links: rename, which replaces.
		if err := os.Rename(tmp, path); err != nil {
			return nil, nil, fmt.Errorf("api: %w", err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("api: %w", err)
	}
	cleanup = func() error {
		cur, err := os.Lstat(path)
		if err != nil || !os.SameFile(cur, fi) {
			return nil // gone, or another server's now
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("api: %w", err)
		}
		return nil
	}
	return ln, cleanup, nil
}

// clearStale makes sure no file is at path: it removes a socket that no
// server answers on, and refuses a live socket or any other kind of file.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("api: %s exists and is not a socket; move it away", path)
	}
	nc, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		nc.Close()
		return fmt.Errorf("%w (it answers on %s)", ErrAlreadyRunning, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("api: checking for a daemon on %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("api: removing the stale socket: %w", err)
	}
	return nil
}
