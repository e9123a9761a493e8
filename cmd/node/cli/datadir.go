package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// socketFile is the name of the daemon's API socket in the data
// directory.
const socketFile = "parley.sock"

// dataDir returns the data directory, absolute: flagValue (--data) if
// set, else $PARLEY_DATA, else $XDG_DATA_HOME/parley (XDG base directory
// spec: a relative XDG_DATA_HOME is ignored), else
// ~/.local/share/parley. A leading "~/" is expanded, since a flag given
// as --data=~/x reaches us unexpanded.
func dataDir(flagValue string) (string, error) {
	dir := flagValue
	if dir == "" {
		dir = os.Getenv("PARLEY_DATA")
	}
	if dir == "" {
		if xdg := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(xdg) {
			dir = filepath.Join(xdg, "parley")
		}
	}
	if dir == "" || dir == "~" || strings.HasPrefix(dir, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no data directory: give --data DIR or set PARLEY_DATA (%w)", err)
		}
		switch {
		case dir == "":
			dir = filepath.Join(home, ".local", "share", "parley")
		case dir == "~":
			dir = home
		default:
			dir = filepath.Join(home, dir[2:])
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data directory %q: %w", dir, err)
	}
	return abs, nil
}

// socketPath returns the daemon's API socket for the data directory
// given by flagValue (see dataDir).
func socketPath(flagValue string) (string, error) {
	dir, err := dataDir(flagValue)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return "", fmt.Errorf("data directory %s is not a directory", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("data directory: %w", err)
	}
	return filepath.Join(dir, socketFile), nil
}
