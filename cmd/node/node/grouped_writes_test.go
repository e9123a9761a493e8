package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// Writes of group state are grouped (writes.go): the messages a group
// sends and receives while its previous write is being made are saved in
// one transaction. These tests check that a message is saved once, that
// its event carries its place in the history, and that what Send
// acknowledged survives a SIGKILL at any moment, mid-write included.

const (
	// crashChildEnv, set to a data directory, makes the test binary a
	// child that sends in a group of its own until it is killed.
	crashChildEnv = "PARLEY_NODE_CRASH_CHILD"
	// crashRoundEnv names the child's round, which its texts carry.
	crashRoundEnv = "PARLEY_NODE_CRASH_ROUND"
	crashGroup    = "crash"
	crashSenders  = 8
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir, os.Getenv(crashRoundEnv)))
	}
	os.Exit(m.Run())
}

// crashChild opens the node in dir and sends from crashSenders goroutines
// at once, printing "ack TEXT" once Send returned, and every so often
// "writes W OUTPUTS", the group's count of writes and of the outputs they
// carried, until it is killed.
func crashChild(dir, round string) int {
	ctx := context.Background()
	n, err := Open(ctx, Config{Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, UpdateInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 3
	}
	var gid string
	groups, err := n.Groups(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child groups:", err)
		return 3
	}
	for _, g := range groups {
		if g.Name == crashGroup {
			gid = g.ID
		}
	}
	if gid == "" {
		g, err := n.CreateGroup(ctx, crashGroup)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child create group:", err)
			return 3
		}
		gid = g.ID
	}
	r := n.runner(gid)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format, args...) // os.Stdout is unbuffered
	}
	errc := make(chan error, crashSenders)
	for w := range crashSenders {
		go func() {
			for i := 0; ; i++ {
				text := fmt.Sprintf("r%s-w%d-%d", round, w, i)
				if _, err := n.Send(ctx, gid, text); err != nil {
					errc <- fmt.Errorf("send %s: %w", text, err)
					return
				}
				say("ack %s\n", text)
				if i%10 == 0 {
					say("writes %d %d\n", r.writes.Load(), r.outputs.Load())
				}
			}
		}()
	}
	fmt.Fprintln(os.Stderr, "child:", <-errc)
	return 3
}

// TestAcknowledgedSendsSurviveSIGKILL runs a node that sends from many
// goroutines at once in a child process, kills it with SIGKILL after a
// random number of acknowledged sends, several times over, and then checks
// that the node opens, its group is not damaged, and every text Send
// acknowledged is in the history, once. PARLEY_CRASH_SEED=n replays a run.
func TestAcknowledgedSendsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PARLEY_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("PARLEY_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (PARLEY_CRASH_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 17))
	dir := t.TempDir()
	if _, err := Init(dir, "solo", nil, nil); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	grouped := false
	const rounds = 4
	for round := range rounds {
		killAfter := 1 + rng.IntN(150)
		n, g, err := runSendingChild(t, dir, round, killAfter, acked)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		grouped = grouped || g
		t.Logf("round %d: killed after %d acknowledged sends", round, n)
	}
	if !grouped {
		t.Error("no write carried more than one output: the sends were not grouped")
	}

	n := openTestNode(t, dir)
	if g := groupOf(t, n, crashGroup); g.Damaged != "" {
		t.Fatalf("group damaged after the kills: %s", g.Damaged)
	}
	msgs, err := n.Read(context.Background(), crashGroup, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.Text]++
	}
	lost := 0
	for text := range acked {
		if seen[text] == 0 {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged send %q is not in the history", text)
			}
		}
	}
	for text, k := range seen {
		if k > 1 {
			t.Errorf("%q is in the history %d times", text, k)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged sends lost", lost, len(acked))
	}
}

// runSendingChild runs crashChild on dir and kills it once killAfter of
// its sends were acknowledged. It adds every text acknowledged before the
// child died to acked, and reports how many there were and whether a write
// of the child carried several outputs.
func runSendingChild(t *testing.T, dir string, round, killAfter int, acked map[string]bool) (int, bool, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, false, err
	}
	if err := cmd.Start(); err != nil {
		return 0, false, err
	}
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	n, grouped, killed := 0, false, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		// Lines read after the kill were written before it: their
		// sends were acknowledged too.
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "ack":
			acked[f[1]] = true
			n++
		case len(f) == 3 && f[0] == "writes":
			w, _ := strconv.Atoi(f[1])
			o, _ := strconv.Atoi(f[2])
			grouped = grouped || o > w
		}
		if n >= killAfter && !killed {
			killed = true
			if err := cmd.Process.Kill(); err != nil {
				return n, grouped, err
			}
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !killed || !errors.As(err, &exit) {
		return n, grouped, fmt.Errorf("child ended by itself (%v) after %d sends: %s", err, n, stderr.String())
	}
	return n, grouped, nil
}

// TestBurstOfSendsIsSavedAndDeliveredOnce has alice send 120 texts from 12
// goroutines at once, so that her writes group several sends (and bob's,
// likely, several receptions), and checks that every text is in both
// histories once, that each event arrived once with its place in the
// history, and that a write of alice carried more than one send.
func TestBurstOfSendsIsSavedAndDeliveredOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice, bob := pairIn(t, "burst")
	aliceEvents, err := alice.Subscribe(ctx, "burst")
	if err != nil {
		t.Fatal(err)
	}
	bobEvents, err := bob.Subscribe(ctx, "burst")
	if err != nil {
		t.Fatal(err)
	}
	ra := alice.runner(groupOf(t, alice, "burst").ID)
	writes0, outputs0 := ra.writes.Load(), ra.outputs.Load()

	const senders, each = 12, 10
	var wg sync.WaitGroup
	errc := make(chan error, senders)
	for w := range senders {
		wg.Go(func() {
			for i := range each {
				if _, err := alice.Send(ctx, "burst", fmt.Sprintf("w%d-%d", w, i)); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if w, o := ra.writes.Load()-writes0, ra.outputs.Load()-outputs0; o <= w {
		t.Errorf("alice's %d writes carried %d outputs; want more outputs than writes", w, o)
	}

	for _, c := range []struct {
		name   string
		n      *Node
		events <-chan api.Event
	}{{"alice", alice, aliceEvents}, {"bob", bob, bobEvents}} {
		got := map[string]uint64{} // text -> Seq of its event
		deadline := time.After(30 * time.Second)
		for len(got) < senders*each {
			select {
			case ev := <-c.events:
				if ev.Type != api.EventMessage || ev.Message == nil {
					continue
				}
				if _, dup := got[ev.Message.Text]; dup {
					t.Errorf("%s: two events for %q", c.name, ev.Message.Text)
				}
				got[ev.Message.Text] = ev.Message.Seq
			case <-deadline:
				t.Fatalf("%s: %d of %d message events", c.name, len(got), senders*each)
			}
		}
		msgs, err := c.n.Read(ctx, "burst", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		inHistory := map[string]uint64{}
		for _, m := range msgs {
			if _, dup := inHistory[m.Text]; dup {
				t.Errorf("%s: %q twice in the history", c.name, m.Text)
			}
			inHistory[m.Text] = m.Seq
		}
		for text, seq := range got {
			if h, ok := inHistory[text]; !ok || h != seq {
				t.Errorf("%s: event of %q says seq %d; history has %d (present %v)", c.name, text, seq, h, ok)
			}
		}
	}
}

// TestSendFailsWhenItCannotBeSaved: a Send whose write fails returns an
// error, not the message's id, and the group writes nothing more.
func TestSendFailsWhenItCannotBeSaved(t *testing.T) {
	ctx := context.Background()
	n := testNode(t, "solo")
	if _, err := n.CreateGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Send(ctx, "g", "saved"); err != nil {
		t.Fatal(err)
	}
	if err := n.st.Close(); err != nil { // every write fails from now on
		t.Fatal(err)
	}
	if id, err := n.Send(ctx, "g", "not saved"); err == nil {
		t.Fatalf("Send with the store closed: got id %s, want an error", id)
	}
	if _, err := n.Send(ctx, "g", "after"); err == nil {
		t.Fatal("Send after a failed write: got no error")
	}
}
