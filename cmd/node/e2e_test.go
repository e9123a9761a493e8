package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// End-to-end tests: they build the parley binary and run real daemons on
// 127.0.0.1, each in its own data directory, driven through the CLI the
// way a person would.

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// parleyBinary builds cmd/node once for the test run.
func parleyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "parley")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// peer is one person's node: a data directory and, while it runs, a
// daemon process.
type peer struct {
	t      *testing.T
	name   string
	dir    string
	listen string
	daemon *exec.Cmd
	log    *os.File
	exited chan struct{}
}

func newPeer(t *testing.T, name string, args ...string) *peer {
	t.Helper()
	p := &peer{t: t, name: name, dir: filepath.Join(t.TempDir(), name)}
	if _, err := p.cli(append([]string{"init", "--name", name, "--key-file"}, args...)...); err != nil {
		t.Fatal(err)
	}
	return p
}

// cli runs a parley command on the peer's data directory.
func (p *peer) cli(args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, parleyBinary(p.t), append(args, "--data", p.dir)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("parley %s (%s): %v: %s", strings.Join(args, " "), p.name, err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

func (p *peer) must(args ...string) string {
	p.t.Helper()
	out, err := p.cli(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// start runs the daemon and waits until its API answers.
func (p *peer) start() {
	p.t.Helper()
	log, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	listen := p.listen
	if listen == "" {
		listen = "/ip4/127.0.0.1/tcp/0"
	}
	cmd := exec.Command(parleyBinary(p.t), "run", "--data", p.dir, "--no-mdns", "--listen", listen, "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.daemon, p.log, p.exited = cmd, log, make(chan struct{})
	go func() { cmd.Wait(); close(p.exited) }()
	p.t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	waitFor(p.t, 30*time.Second, p.name+"'s daemon", func() bool {
		_, err := p.cli("status")
		return err == nil
	})
	if p.listen == "" {
		// Come back on the same port after a restart, as a configured
		// node would.
		var id api.Identity
		decode(p.t, p.must("id", "--json"), &id)
		for _, a := range id.Addrs {
			if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
				p.listen = a[:strings.Index(a, "/p2p/")]
			}
		}
	}
}

// logPath is where the daemon's log goes: beside its data directory, or
// under $PARLEY_E2E_LOGS/TEST/ when that is set, to be kept after the
// test (a failure to read at leisure).
func (p *peer) logPath() string {
	if dir := os.Getenv("PARLEY_E2E_LOGS"); dir != "" {
		dir = filepath.Join(dir, strings.ReplaceAll(p.t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o700); err == nil {
			return filepath.Join(dir, p.name+".log")
		}
	}
	return filepath.Join(filepath.Dir(p.dir), p.name+".log")
}

// kill stops the daemon with a signal and waits for it to exit.
func (p *peer) kill(sig syscall.Signal) {
	if p.daemon == nil {
		return
	}
	p.daemon.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.daemon.Process.Kill()
		<-p.exited
	}
	p.daemon = nil
	p.log.Close()
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitForOr(t, timeout, what, cond, func() {})
}

// waitForOr is waitFor that calls explain (to log what helps find why)
// before it fails the test.
func waitForOr(t *testing.T, timeout time.Duration, what string, cond func() bool, explain func()) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			explain()
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *peer) group(name string) api.Group {
	var gs []api.Group
	out, err := p.cli("groups", "--json")
	if err != nil {
		return api.Group{}
	}
	decode(p.t, out, &gs)
	for _, g := range gs {
		if g.Name == name {
			return g
		}
	}
	return api.Group{}
}

func (p *peer) messages(group string) []api.Message {
	var ms []api.Message
	out, err := p.cli("read", group, "--json")
	if err != nil {
		return nil
	}
	decode(p.t, out, &ms)
	return ms
}

// formCrew starts a daemon for each name and has the first create the
// group "crew" and invite the others; it returns once every daemon has
// crew with all of them in it.
func formCrew(t *testing.T, names ...string) map[string]*peer {
	t.Helper()
	peers := map[string]*peer{}
	for _, n := range names {
		peers[n] = newPeer(t, n)
		peers[n].start()
	}
	first := peers[names[0]]
	for _, n := range names[1:] {
		first.contact(peers[n])
	}
	first.must("group", "create", "crew")
	for _, n := range names[1:] {
		first.must("invite", "crew", n)
	}
	for _, n := range names {
		waitFor(t, 60*time.Second, fmt.Sprintf("%s in crew with %d members", n, len(names)), func() bool {
			g := peers[n].group("crew")
			return g.Members == len(names) && !g.Pending
		})
	}
	return peers
}

// endToEnd skips an end-to-end test under -short and -race (the daemons
// are not race-built; .ci/run runs these in their own step), and returns
// a step logger that prints the time since the test began.
func endToEnd(t *testing.T, daemons string) (step func(what string)) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: builds the binary and runs " + daemons)
	}
	if raceEnabled {
		t.Skip("run without -race (the daemons are not race-built; .ci/run runs it in its own step)")
	}
	start := time.Now()
	return func(what string) {
		t.Helper()
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), what)
	}
}

// contact makes other a contact of p.
func (p *peer) contact(other *peer) {
	p.t.Helper()
	code := strings.TrimSpace(other.must("id", "--code"))
	p.must("contact", "add", code)
}

// TestEndToEnd runs six daemons through a group's life: forming by
// invitations, talking, a removal and an add at the same moment, a daemon
// killed with SIGKILL and restarted, an invitee offline when invited, a
// 50 MiB file, and a member leaving.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds the binary and runs six daemons")
	}
	if raceEnabled {
		t.Skip("run without -race (the daemons are not race-built; .ci/run runs it in its own step)")
	}
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	names := []string{"alice", "bob", "carol", "dave", "erin"}
	peers := map[string]*peer{}
	for _, n := range names {
		peers[n] = newPeer(t, n)
		peers[n].start()
	}
	alice := peers["alice"]
	step("five daemons up")

	// 1. Five nodes form a group through invitations.
	for _, n := range names[1:] {
		alice.contact(peers[n])
	}
	alice.must("group", "create", "crew")
	for _, n := range names[1:] {
		alice.must("invite", "crew", n)
	}
	for _, n := range names {
		waitFor(t, 60*time.Second, n+" in crew with 5 members", func() bool {
			g := peers[n].group("crew")
			return g.Members == 5 && !g.Pending
		})
	}
	step("group of five formed through invites")

	// Everyone talks; all get every message, each in the same epoch.
	var sent []sentMsg
	send := func(from, text string, members ...string) {
		peers[from].must("send", "crew", text)
		sent = append(sent, sentMsg{text, members})
	}
	for round := range 2 {
		for _, n := range names {
			send(n, fmt.Sprintf("%s says hello (%d)", n, round), names...)
		}
	}
	checkHistories(t, peers, names, "crew", sent)
	step("ten messages, same history everywhere")

	// 2. At the same moment, bob removes erin and carol adds frank, who is
	// offline (4: he joins when he comes up).
	frank := newPeer(t, "frank")
	frank.start()
	carol := peers["carol"]
	carol.contact(frank)
	frank.kill(syscall.SIGTERM)
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); _, errA = peers["bob"].cli("remove", "crew", "erin") }()
	go func() { defer wg.Done(); _, errB = carol.cli("invite", "crew", "frank") }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	live := []string{"alice", "bob", "carol", "dave"}
	waitFor(t, 60*time.Second, "erin removed", func() bool { return peers["erin"].group("crew").Removed })
	waitFor(t, 60*time.Second, "the members to agree on 5 members (frank in, erin out)", func() bool {
		return agreed(peers, live, "crew", 5)
	})
	step("removal and add at the same moment converged")
	frank.start()
	peers["frank"] = frank
	live = append(live, "frank")
	waitFor(t, 60*time.Second, "frank in the group after coming up", func() bool {
		g := frank.group("crew")
		return g.Members == 5 && !g.Pending
	})
	send("frank", "frank here, I was offline when invited", live...)
	step("offline invitee joined when it came up")

	// 3. dave's daemon is killed with SIGKILL while the others talk, then
	// restarted: it catches up with no loss and no duplicate.
	dave := peers["dave"]
	send("dave", "dave before the crash", live...)
	dave.kill(syscall.SIGKILL)
	for _, n := range []string{"alice", "bob", "carol"} {
		send(n, n+" while dave is down", live...)
	}
	dave.start()
	send("dave", "dave is back", live...)
	step("dave killed with SIGKILL and restarted")

	// erin, removed, has none of the messages sent after her removal.
	// Everyone still in the group has every message exactly once.
	checkHistories(t, peers, live, "crew", sent)
	forErin := map[string]bool{}
	for _, s := range sent {
		for _, m := range s.members {
			forErin[s.text] = forErin[s.text] || m == "erin"
		}
	}
	for _, m := range peers["erin"].messages("crew") {
		if !forErin[m.Text] {
			t.Errorf("erin, removed, read %q", m.Text)
		}
	}
	step("no loss, no duplicates after the crash")

	// 5. A 50 MiB file arrives intact at every member.
	data := make([]byte, 50<<20)
	rand.Read(data)
	sum := sha256.Sum256(data)
	path := filepath.Join(t.TempDir(), "video.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	alice.must("send", "crew", "--file", path)
	for _, n := range live[1:] {
		var got string
		waitForOr(t, 5*time.Minute, "the file at "+n, func() bool {
			for _, m := range peers[n].messages("crew") {
				if m.File != nil && m.File.Path != "" {
					got = m.File.Path
					return true
				}
			}
			return false
		}, func() {
			logTail(t, peers[n], 80)
			logTail(t, alice, 40)
		})
		back, err := os.ReadFile(got)
		if err != nil || sha256.Sum256(back) != sum {
			t.Errorf("%s: the received file differs (%v)", n, err)
		}
	}
	step("50 MiB file intact at every member")

	// 6. bob leaves; he can read nothing sent after.
	peers["bob"].must("leave", "crew")
	waitFor(t, 60*time.Second, "bob out", func() bool {
		return peers["bob"].group("crew").Removed && agreed(peers, []string{"alice", "carol", "dave", "frank"}, "crew", 4)
	})
	alice.must("send", "crew", "after bob left")
	time.Sleep(2 * time.Second)
	for _, m := range peers["bob"].messages("crew") {
		if m.Text == "after bob left" {
			t.Error("bob read a message sent after he left")
		}
	}
	if _, err := peers["bob"].cli("send", "crew", "still here?"); err == nil {
		t.Error("bob could send after leaving")
	}
	step("bob left and reads no more")
}

// agreed reports whether the peers are all on one epoch of the group with
// the given number of members.
func agreed(peers map[string]*peer, names []string, group string, members int) bool {
	var epoch uint64
	for i, n := range names {
		g := peers[n].group(group)
		if g.Members != members || g.Pending || g.Removed {
			return false
		}
		if i == 0 {
			epoch = g.Epoch
		} else if g.Epoch != epoch {
			return false
		}
	}
	return true
}

// sentMsg is a message sent in the test and the members it is for.
type sentMsg struct {
	text    string
	members []string
}

// checkHistories waits until every peer has the messages meant for it
// (those sent while it was a member), then checks that it has no other,
// none twice, and that all peers saw each message in the same epoch.
func checkHistories(t *testing.T, peers map[string]*peer, names []string, group string, sent []sentMsg) {
	t.Helper()
	epochs := map[string]uint64{}
	for _, n := range names {
		want := map[string]bool{}
		for _, s := range sent {
			for _, m := range s.members {
				if m == n {
					want[s.text] = true
				}
			}
		}
		var history []api.Message
		waitFor(t, 90*time.Second, fmt.Sprintf("%s to have its %d messages", n, len(want)), func() bool {
			history = peers[n].messages(group)
			have := 0
			for _, m := range history {
				if want[m.Text] {
					have++
				}
			}
			return have >= len(want)
		})
		seen := map[string]bool{}
		for _, m := range history {
			if m.File != nil {
				continue
			}
			if seen[m.ID] {
				t.Errorf("%s has message %q twice", n, m.Text)
			}
			seen[m.ID] = true
			if !want[m.Text] {
				t.Errorf("%s has %q, which was not sent to it", n, m.Text)
			}
			if e, ok := epochs[m.ID]; ok && e != m.Epoch {
				t.Errorf("%s saw %q in epoch %d, another member in epoch %d", n, m.Text, m.Epoch, e)
			}
			epochs[m.ID] = m.Epoch
		}
	}
}
