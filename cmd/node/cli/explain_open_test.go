package cli

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/parley-p2p/parley/store"
)

// TestStartOnAFullDiskSaysSo: a daemon that cannot open its store because
// the disk is full (as seen: "store: copy KEYREGISTRY: write ...: no space
// left on device") says which disk is full and what to do.
func TestStartOnAFullDiskSaysSo(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("store: copy KEYREGISTRY: write /d/store/verify.tmp/KEYREGISTRY: %w", syscall.ENOSPC),
		fmt.Errorf("store: write: %w", store.ErrNoSpace),
	} {
		got := explainOpen(err, "/d").Error()
		if !strings.HasPrefix(got, "the disk holding /d is full: free some space on it and start again") {
			t.Errorf("explainOpen(%v) = %q", err, got)
		}
	}
}
