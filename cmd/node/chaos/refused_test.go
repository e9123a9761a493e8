package chaos

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// TestRefusedTextReachesAMemberBackFromBeforeTheRemoval: real daemons in
// network namespaces play the case of issue 15 that the simulator found
// (its large sweep's seed 3) and that e85cc0b closed. A member's text
// races its own removal: one member (alice) takes it in before she sees
// the removal, another (bob, who made the removal) refuses it when it
// reaches him. A third member (carol), down all along, comes back when
// only bob is up. Before e85cc0b bob kept nothing of what he refused, so
// carol could not get the text, and the two held different logs of that
// epoch for as long as alice stayed away. Now bob keeps it and serves it:
// carol sees it, and takes it in or refuses it by the order in which it
// and the removal reach her; bob still shows nothing of it; and once the
// two agree, neither asks the other for anything. (With bob's keeping
// turned off, Config.MaxRefusedKept -1, this test fails.) Run as root,
// like TestChaos:
//
//	sudo PARLEY_CHAOS=1 go test -run TestRefusedTextReachesAMemberBackFromBeforeTheRemoval -v ./cmd/node/chaos/
func TestRefusedTextReachesAMemberBackFromBeforeTheRemoval(t *testing.T) {
	skipUnlessChaos(t, "refused-text test")
	work := t.TempDir()
	nw := newNetwork(t, fmt.Sprintf("parley-ref-%d", os.Getpid()), 4)
	bin := parleyBinary(t, work)
	names := []string{"alice", "bob", "carol", "dave"}
	var ds []*daemon
	for i, name := range names {
		d := newDaemon(t, bin, work, name, nw.nodes[i], nw.addrs[i])
		if err := d.start(); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	alice, bob, carol, dave := ds[0], ds[1], ds[2], ds[3]
	t.Cleanup(func() {
		if t.Failed() {
			keepLogs(t, work)
		}
	})
	invite(alice, ds[1:])
	for _, d := range ds {
		mustWait(t, 90*time.Second, d.name+" in the group of 4", func() bool {
			g, err := d.group(group)
			return err == nil && g.Members == 4 && !g.Pending
		}, ds...)
	}
	for _, d := range ds {
		d.must("send", group, "hello from "+d.name)
	}
	for _, d := range ds {
		mustWait(t, 60*time.Second, d.name+" has the 4 hellos", func() bool { return len(texts(d, "hello from ")) == 4 }, ds...)
	}
	// Each knows where the others are (carol must find bob again when
	// she restarts with only him up).
	for _, d := range ds {
		mustWait(t, 60*time.Second, d.name+" sees the 3 others online", func() bool {
			g, err := d.groupStatus(group)
			return err == nil && g.OnlinePeers == 3
		}, ds...)
	}
	g, err := alice.group(group)
	if err != nil {
		t.Fatal(err)
	}
	before := g.Epoch
	t.Logf("a group of 4 at epoch %d; everyone has every hello and sees the others online", before)

	if err := carol.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	nw.setLink(t, 1, false) // bob alone
	bob.must("remove", group, "dave")
	mustWait(t, 60*time.Second, "bob's removal of dave, alone", func() bool {
		g, err := bob.group(group)
		return err == nil && g.Epoch > before && g.Members == 3
	}, ds...)
	const text = "dave's last word, sent as bob removes him"
	dave.must("send", group, text)
	mustWait(t, 30*time.Second, "alice has dave's text", func() bool { return len(texts(alice, text)) == 1 }, ds...)
	if err := dave.stop(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g, _ = alice.group(group)
	if g.Epoch != before || g.Members != 4 {
		t.Fatalf("alice moved before the heal: epoch %d with %d members, want %d with 4", g.Epoch, g.Members, before)
	}
	t.Logf("bob, cut off, removed dave (epoch %d); dave sent a text on epoch %d that alice took in; carol is down", before+1, before)

	nw.setLink(t, 1, true)
	// Bob must have refused the text (so he holds it) before alice goes:
	// agreeing with her by the heads he has is not enough, as her first
	// head after the heal may not have reached him yet.
	refused := regexp.MustCompile(fmt.Sprintf(`message rejected.*application message in epoch %d: %s`, before, regexp.QuoteMeta(ordering.ErrSenderRemoved.Error())))
	var removal uint64
	mustWait(t, 90*time.Second, "alice and bob agree on the removal, miss nothing, and bob refused dave's text", func() bool {
		a, errA := alice.groupStatus(group)
		b, errB := bob.groupStatus(group)
		removal = b.Epoch
		return errA == nil && errB == nil && a.Epoch == b.Epoch && a.Epoch > before && a.Members == 3 && b.Members == 3 &&
			!a.Syncing && !b.Syncing && a.Missing == 0 && b.Missing == 0 && bob.countLog(refused) > 0
	}, ds...)
	if n := len(texts(bob, text)); n != 0 {
		t.Fatalf("bob shows dave's text %d times; he removed dave before it reached him", n)
	}
	if n := len(texts(alice, text)); n != 1 {
		t.Fatalf("alice shows dave's text %d times after the heal, want 1", n)
	}
	t.Logf("healed: alice and bob at epoch %d; bob refused dave's text, alice keeps it", removal)

	if err := alice.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := carol.start(); err != nil {
		t.Fatal(err)
	}
	// Carol sees dave's text: she takes it in if she reads it before the
	// removal (as alice did), or refuses it if the removal comes first
	// (as bob did); which of the two depends on the order the envelopes
	// reach her in. Either way she and bob then hold the same of that
	// epoch. Without the text she would lack what bob's heads say exists.
	mustWait(t, 60*time.Second, "carol, with only bob up, sees dave's text and has the removal", func() bool {
		c, err := carol.groupStatus(group)
		return err == nil && c.Epoch == removal && c.Members == 3 && !c.Syncing && c.Missing == 0 &&
			(len(texts(carol, text)) == 1 || carol.countLog(refused) > 0)
	}, ds...)
	carolTook := len(texts(carol, text)) == 1
	if carolTook {
		t.Logf("carol came back from epoch %d with only bob up, got dave's text from him, and took it in as alice did", before)
	} else {
		t.Logf("carol came back from epoch %d with only bob up, got dave's text from him, and refused it as bob did (the removal reached her first)", before)
	}

	// Quiet: once they agree, neither asks the other for anything.
	answers := func() int { return bob.countLog(catchUpAnswer) + carol.countLog(catchUpAnswer) }
	mustWait(t, 30*time.Second, "bob and carol stop exchanging catch-up", func() bool {
		n := answers()
		time.Sleep(3 * time.Second)
		return answers() == n
	}, ds...)
	n0 := answers()
	time.Sleep(20 * time.Second)
	if n := answers() - n0; n != 0 {
		t.Fatalf("bob and carol agree, yet %d catch-up answers came in 20 quiet seconds", n)
	}
	for _, d := range []*daemon{bob, carol} {
		c, err := d.groupStatus(group)
		if err != nil || c.Epoch != removal || c.Missing != 0 || c.Syncing {
			t.Fatalf("%s after 20 quiet seconds: %+v, %v", d.name, c, err)
		}
	}
	t.Logf("bob and carol: 0 catch-up answers in 20 quiet seconds")

	if err := alice.start(); err != nil {
		t.Fatal(err)
	}
	mustWait(t, 60*time.Second, "alice, bob and carol agree", func() bool {
		for _, d := range []*daemon{alice, bob, carol} {
			c, err := d.groupStatus(group)
			if err != nil || c.Epoch != removal || c.Members != 3 || c.Syncing || c.Missing != 0 {
				return false
			}
		}
		return true
	}, ds...)
	if n := len(texts(alice, text)); n != 1 {
		t.Fatalf("alice shows dave's text %d times at the end, want 1", n)
	}
	if n, want := len(texts(carol, text)), map[bool]int{true: 1}[carolTook]; n != want {
		t.Fatalf("carol shows dave's text %d times at the end, want %d", n, want)
	}
	if n := len(texts(bob, text)); n != 0 {
		t.Fatalf("bob shows dave's text %d times at the end, want 0", n)
	}
	t.Logf("alice back: the three agree on epoch %d; dave's text once at alice, not at bob, and as before at carol", removal)
}

// catchUpAnswer is the debug line a daemon logs for each catch-up answer
// it takes in.
var catchUpAnswer = regexp.MustCompile(`catch-up answer`)

// countLog counts the lines of the daemon's log that match re. A log it
// cannot read fails the test: counted as 0 it would pass the quiet check.
func (d *daemon) countLog(re *regexp.Regexp) int {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		d.t.Fatalf("reading %s's log: %v", d.name, err)
	}
	return len(re.FindAllIndex(data, -1))
}

// texts returns the texts of the group's messages at d that start with
// prefix.
func texts(d *daemon, prefix string) []string {
	ms, err := d.messages(group)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range ms {
		if strings.HasPrefix(m.Text, prefix) {
			out = append(out, m.Text)
		}
	}
	return out
}

// mustWait fails the test, with the state of the group at each running
// daemon of ds, unless cond holds within timeout.
func mustWait(t *testing.T, timeout time.Duration, what string, cond func() bool, ds ...*daemon) {
	t.Helper()
	if waitUntil(timeout, cond) {
		return
	}
	var views []string
	for _, d := range ds {
		if !d.running() {
			views = append(views, d.name+": down")
			continue
		}
		g, err := d.groupStatus(group)
		views = append(views, fmt.Sprintf("%s: epoch %d, %d members, syncing %v, missing %d, state %s %s (%v); %d texts",
			d.name, g.Epoch, g.Members, g.Syncing, g.Missing, g.State, g.Reason, err, len(texts(d, ""))))
	}
	t.Fatalf("%s: not within %v; %s", what, timeout, strings.Join(views, "; "))
}
