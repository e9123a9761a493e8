package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestMessageBecomesFinalAfterTheReceiverRestarts: with real daemons, bob
// delivers texts in an epoch that is not final yet (three of its six
// members are down), is killed with SIGKILL, and restarts after the
// others have come back and voted the epoch final. Every text must show
// as final at bob, in the epoch it was delivered in. (Before the log
// kept the message each envelope carried, a restarted member no longer
// knew which epochs its messages were seen in, and they stayed not final
// at it for ever.)
func TestMessageBecomesFinalAfterTheReceiverRestarts(t *testing.T) {
	step := endToEnd(t, "six daemons")
	peers := formCrew(t, "alice", "bob", "carol", "dave", "erin")
	alice, bob := peers["alice"], peers["bob"]
	down := []*peer{peers["carol"], peers["dave"], peers["erin"]}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []*peer{alice, bob} {
				out, err := p.cli("status")
				t.Logf("%s's status (%v):\n%s", p.name, err, out)
				logTail(t, p, 80)
			}
		}
	})
	step("group of five")
	waitFor(t, 30*time.Second, "alice's epoch final", func() bool {
		st := groupState(t, alice)
		return st.FinalEpoch == st.Epoch
	})

	for _, p := range down {
		p.kill(syscall.SIGKILL)
	}
	// frank's add makes an epoch of six members of whom two run (frank's
	// Welcome waits for the epoch to be final): alice and bob are no strict
	// majority, so it cannot be final.
	frank := newPeer(t, "frank")
	frank.start()
	alice.contact(frank)
	before := groupState(t, alice).Epoch
	alice.must("invite", "crew", "frank")
	waitFor(t, time.Minute, "bob in crew with six members", func() bool {
		g := bob.group("crew")
		return g.Members == 6 && !g.Pending
	})
	epoch := groupState(t, bob).Epoch
	if epoch <= before {
		t.Fatalf("bob's epoch %d after the add, want above %d", epoch, before)
	}
	step(fmt.Sprintf("frank added in epoch %d with carol, dave and erin down", epoch))

	var texts []string
	for i := range 3 {
		texts = append(texts, fmt.Sprintf("text %d of an epoch not final", i))
		alice.must("send", "crew", texts[i])
	}
	waitFor(t, 20*time.Second, "bob has the texts", func() bool { return hasTexts(bob, texts) })
	// The premise: bob delivered them and holds them not final.
	for _, m := range bob.messages("crew") {
		for _, text := range texts {
			if m.Text == text && (m.Final || m.Epoch != epoch) {
				t.Fatalf("bob holds %q final=%v in epoch %d before the others are back; the test needs it not final in %d", text, m.Final, m.Epoch, epoch)
			}
		}
	}
	if st := groupState(t, bob); st.FinalEpoch >= epoch {
		t.Fatalf("bob's final epoch %d, want below %d", st.FinalEpoch, epoch)
	}
	bob.kill(syscall.SIGKILL)
	step("bob delivered the texts not final and was killed")

	for _, p := range down {
		p.start()
	}
	waitFor(t, time.Minute, fmt.Sprintf("epoch %d final at alice", epoch), func() bool {
		return groupState(t, alice).FinalEpoch >= epoch
	})
	step("carol, dave and erin back; the epoch is final at alice")
	bob.start()
	back := time.Now()
	finalAt := func(p *peer) func() bool {
		return func() bool {
			n := 0
			for _, m := range p.messages("crew") {
				for _, text := range texts {
					if m.Text == text && m.Final && m.Epoch == epoch {
						n++
					}
				}
			}
			return n == len(texts)
		}
	}
	waitForOr(t, 30*time.Second, "bob shows every text final in epoch "+fmt.Sprint(epoch), finalAt(bob), func() {
		for _, m := range bob.messages("crew") {
			t.Logf("bob: %q epoch %d final %v", m.Text, m.Epoch, m.Final)
		}
		t.Logf("bob's final epoch %d", groupState(t, bob).FinalEpoch)
	})
	step(fmt.Sprintf("bob restarted and showed the texts final after %.1fs", time.Since(back).Seconds()))
	// frank's Welcome is the committer's: bob's, when bob made the
	// epoch, kept through his crash and sent once he sees it final.
	waitFor(t, time.Minute, "frank joined", func() bool {
		g := frank.group("crew")
		return g.Members == 6 && !g.Pending
	})
	for _, p := range append(down, alice, frank) {
		waitFor(t, 30*time.Second, p.name+" shows every text final", finalAt(p))
	}
}
