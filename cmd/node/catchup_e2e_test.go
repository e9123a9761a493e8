package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestRestartedMemberCatchesUpPastALargeFile: with real daemons, bob is
// killed (SIGKILL) while the group's epoch holds a 20 MiB file; alice
// sends three texts; bob restarts and has every text within 5 s, while
// status says what it lacks until it has it. Then carol, killed in the
// middle of a second file, restarts and gets the whole file. (With the
// landed code bob never got the texts: every catch-up answer repeated the
// first 4 MiB of the epoch's file chunks.)
func TestRestartedMemberCatchesUpPastALargeFile(t *testing.T) {
	step := endToEnd(t, "three daemons")
	peers := formCrew(t, "alice", "bob", "carol")
	alice, bob, carol := peers["alice"], peers["bob"], peers["carol"]
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []*peer{alice, carol} {
				out, err := p.cli("status")
				t.Logf("%s's status (%v):\n%s", p.name, err, out)
				logTail(t, p, 80)
			}
		}
	})
	step("group of three")

	file := func(name string, size int) (string, []byte) {
		data := make([]byte, size)
		rand.Read(data)
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path, data
	}
	received := func(p *peer, name string) []byte {
		for _, m := range p.messages("crew") {
			if m.File != nil && m.File.Name == name && m.File.Path != "" {
				data, err := os.ReadFile(m.File.Path)
				if err != nil {
					return nil
				}
				return data
			}
		}
		return nil
	}
	path, data := file("big.bin", 20<<20)
	alice.must("send", "crew", "--file", path)
	for _, n := range []string{"bob", "carol"} {
		waitFor(t, 2*time.Minute, "the 20 MiB file at "+n, func() bool { return received(peers[n], "big.bin") != nil })
	}
	step("20 MiB file at bob and carol")

	bob.kill(syscall.SIGKILL)
	killed := time.Now()
	var texts []string
	for i := range 3 {
		texts = append(texts, fmt.Sprintf("text %d while bob is down", i))
		alice.must("send", "crew", texts[i])
	}
	waitFor(t, 20*time.Second, "carol has the texts", func() bool { return hasTexts(carol, texts) })
	// A member killed shows offline within the liveness pings' two
	// misses (5 s each) and a status refresh; it showed online for
	// about 30 s before the pings.
	waitFor(t, 20*time.Second, "alice shows bob offline", func() bool {
		var ms []api.Member
		decode(t, alice.must("members", "crew", "--json"), &ms)
		for _, m := range ms {
			if m.Name == "bob" {
				return !m.Online
			}
		}
		return false
	})
	step(fmt.Sprintf("alice showed bob offline %.1fs after the kill", time.Since(killed).Seconds()))
	bob.start()
	back := time.Now()
	waitFor(t, 5*time.Second, "bob has the three texts", func() bool { return hasTexts(bob, texts) })
	step(fmt.Sprintf("bob restarted and had the texts after %.1fs", time.Since(back).Seconds()))
	waitFor(t, 20*time.Second, "bob's status ok", func() bool { return groupState(t, bob).Missing == 0 })

	// Carol killed in the middle of a file; it resumes when she is back.
	path2, data2 := file("second.bin", 12<<20)
	alice.must("send", "crew", "--file", path2)
	waitFor(t, time.Minute, "carol has part of the second file", func() bool {
		for _, m := range carol.messages("crew") {
			if m.File != nil && m.File.Name == "second.bin" && m.File.Received > 0 {
				return true
			}
		}
		return false
	})
	carol.kill(syscall.SIGKILL)
	step("carol killed in the middle of the second file")
	waitFor(t, time.Minute, "bob has the second file", func() bool { return received(bob, "second.bin") != nil })
	carol.start()
	waitFor(t, 2*time.Minute, "carol has the second file", func() bool { return received(carol, "second.bin") != nil })
	step("carol restarted and completed the second file")
	for _, c := range []struct {
		p    *peer
		name string
		want []byte
	}{{bob, "big.bin", data}, {carol, "big.bin", data}, {bob, "second.bin", data2}, {carol, "second.bin", data2}} {
		if got := received(c.p, c.name); !bytes.Equal(got, c.want) {
			t.Errorf("%s: %s differs from what was sent (%d bytes, want %d)", c.p.name, c.name, len(got), len(c.want))
		}
	}
	for _, p := range []*peer{bob, carol} {
		eachTextOnce(t, p, texts)
	}
}

// eachTextOnce fails the test unless p has read each text in crew exactly
// once.
func eachTextOnce(t *testing.T, p *peer, texts []string) {
	t.Helper()
	n := map[string]int{}
	for _, m := range p.messages("crew") {
		n[m.Text]++
	}
	for _, text := range texts {
		if n[text] != 1 {
			t.Errorf("%s has %q %d times", p.name, text, n[text])
		}
	}
}

// hasTexts reports whether p has read every text in crew.
func hasTexts(p *peer, texts []string) bool {
	have := map[string]bool{}
	for _, m := range p.messages("crew") {
		have[m.Text] = true
	}
	for _, text := range texts {
		if !have[text] {
			return false
		}
	}
	return true
}

// groupState returns p's status of crew.
func groupState(t *testing.T, p *peer) api.GroupStatus {
	var st api.Status
	decode(t, p.must("status", "--json"), &st)
	for _, g := range st.Groups {
		if g.Name == "crew" {
			return g
		}
	}
	t.Fatalf("%s has no crew in its status", p.name)
	return api.GroupStatus{}
}

// logTail prints the last n lines of p's daemon log.
func logTail(t *testing.T, p *peer, n int) {
	data, err := os.ReadFile(p.logPath())
	if err != nil {
		t.Logf("%s's log: %v", p.name, err)
		return
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		// The API's and gossipsub's own debug lines drown the node's.
		if !strings.Contains(line, "component=api") && !strings.Contains(line, "system=pubsub") {
			lines = append(lines, line)
		}
	}
	t.Logf("%s's log, last %d of %d lines:\n%s", p.name, min(n, len(lines)), len(lines), strings.Join(lines[max(0, len(lines)-n):], "\n"))
}
