package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestDiskFullStopsTheGroupAndItResumes: with real daemons, alice's data
// directory is a small tmpfs of its own, filled to the last byte while
// bob sends texts. Her daemon must stay up (badger writes through memory
// maps of sparse files, and a page written there on a full file system
// killed the process with SIGBUS), say the group is stopped because the
// disk is full, refuse her sends with that reason, and, once the space is
// freed, start the group again by itself and catch up on every text, with
// no restart. It needs root to mount the tmpfs (CI runs as root).
func TestDiskFullStopsTheGroupAndItResumes(t *testing.T) {
	step := endToEnd(t, "two daemons")
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount a small tmpfs as a full disk")
	}

	// alice's data directory is the mount point; her log is beside it.
	alice := &peer{t: t, name: "alice", dir: filepath.Join(t.TempDir(), "alice")}
	if err := os.Mkdir(alice.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "tmpfs", alice.dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		alice.kill(syscall.SIGKILL)
		exec.Command("umount", "-l", alice.dir).Run()
	})
	alice.must("init", "--name", "alice", "--key-file")
	alice.start()
	bob := newPeer(t, "bob")
	bob.start()
	t.Cleanup(func() {
		if t.Failed() {
			out, err := alice.cli("status")
			t.Logf("alice's status (%v):\n%s", err, out)
			logTail(t, alice, 60)
		}
	})
	bob.contact(alice)
	bob.must("group", "create", "crew")
	bob.must("invite", "crew", "alice")
	waitFor(t, time.Minute, "alice in crew", func() bool {
		g := alice.group("crew")
		return g.Members == 2 && !g.Pending
	})
	bob.must("send", "crew", "before the disk is full")
	waitFor(t, 20*time.Second, "alice has the first text", func() bool { return hasTexts(alice, []string{"before the disk is full"}) })
	step("group of two; alice's data directory on a tmpfs of 256 MiB")

	filler := filepath.Join(alice.dir, "filler")
	n := fill(t, filler, 0)
	step(fmt.Sprintf("alice's disk filled: %d MiB written, nothing left", n>>20))

	var texts []string
	for i := range 10 {
		texts = append(texts, fmt.Sprintf("text %d while alice's disk is full", i))
		bob.must("send", "crew", texts[i])
	}
	var stopped api.GroupStatus
	waitFor(t, 20*time.Second, "alice's crew stopped for a full disk", func() bool {
		stopped = groupState(t, alice)
		return stopped.State == api.StateStopped
	})
	if !strings.Contains(stopped.Stopped, "disk is full") {
		t.Errorf("alice's crew stopped for %q, want the full disk named", stopped.Stopped)
	}
	step("alice's crew says: " + stopped.Stopped)
	if _, err := alice.cli("send", "crew", "from a full disk"); err == nil || !strings.Contains(err.Error(), "disk is full") {
		t.Errorf("alice's send on a full disk: %v, want an error naming the full disk", err)
	}
	time.Sleep(3 * time.Second) // the group tries to start again, and must not
	select {
	case <-alice.exited:
		t.Fatal("alice's daemon exited on a full disk")
	default:
	}
	if hasTexts(alice, texts) {
		t.Fatal("alice has the texts sent while her disk was full: they were written after all")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	waitFor(t, time.Minute, "alice has the texts after the space was freed", func() bool { return hasTexts(alice, texts) })
	waitFor(t, 20*time.Second, "alice's crew ok", func() bool { return groupState(t, alice).State == api.StateOK })
	step(fmt.Sprintf("space freed; alice's crew started again and had the texts after %.1fs", time.Since(freed).Seconds()))
	alice.must("send", "crew", "after the disk was freed")
	waitFor(t, 20*time.Second, "bob has alice's text", func() bool { return hasTexts(bob, []string{"after the disk was freed"}) })
	select {
	case <-alice.exited:
		t.Fatal("alice's daemon exited")
	default:
	}
	for _, p := range []*peer{alice, bob} {
		eachTextOnce(t, p, append(texts, "before the disk is full", "after the disk was freed"))
	}
}

// fill writes zeros to a file until the file system is full, then gives
// back leave bytes of it; it returns the bytes the file holds.
func fill(t *testing.T, path string, leave int64) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := f.Write(buf)
		n += int64(k)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("filling the disk: %v", err)
		}
	}
	if err := f.Truncate(n - leave); err != nil {
		t.Fatal(err)
	}
	return n - leave
}
