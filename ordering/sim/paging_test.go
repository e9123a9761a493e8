package sim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
)

// largeEpoch is a settled group of three whose current epoch carries a
// file: chunks of 256 KiB application messages from m0, size bytes in
// all, sent one by one and delivered to everyone.
func largeEpoch(t *testing.T, size int) *Sim {
	t.Helper()
	s := quietGroup(t, 15, 3)
	m0 := s.byName["m0"]
	for i := 0; i < size; i += 256 << 10 {
		chunk := make([]byte, min(256<<10, size-i))
		copy(chunk, fmt.Sprintf("chunk %d", i/(256<<10)))
		s.handle(m0, ordering.SendMessage{ContentType: 2, Body: chunk})
		s.advance(20 * time.Millisecond)
	}
	s.advance(5 * time.Second)
	return s
}

// deliveredTexts counts the deliveries at n of the given messages.
func deliveredTexts(n *node, ids []ordering.MessageID) int {
	got := 0
	for _, id := range ids {
		got += n.delivered[id]
	}
	return got
}

// TestCatchUpPagesPastALargeEpoch: a member that crashed holding a 20 MiB
// file of its epoch, while three texts were sent after the file, gets the
// texts at once when it comes back, and the catch-up costs about the
// bytes it missed, not the file again (with the landed code every answer
// repeated the first 4 MiB of the epoch's log and never reached them).
func TestCatchUpPagesPastALargeEpoch(t *testing.T) {
	s := largeEpoch(t, 20<<20)
	m1, m2 := s.byName["m1"], s.byName["m2"]
	m2.offline = true
	var texts []ordering.MessageID
	for i := range 3 {
		out := m1.loop.Handle(s.now, ordering.SendMessage{ContentType: 1, Body: fmt.Appendf(nil, "text %d", i)})
		s.apply(m1, out)
		texts = append(texts, out.Sent)
		s.advance(100 * time.Millisecond)
	}
	s.advance(2 * time.Second)
	before := s.M.SyncBytes
	m2.offline = false
	s.handle(m2, ordering.PeerJoined{})
	waitSim(t, s, 5*time.Second, "m2 has the three texts", func() bool { return deliveredTexts(m2, texts) == 3 })
	s.advance(10 * time.Second)
	if got := deliveredTexts(m2, texts); got != 3 {
		t.Errorf("m2 got the texts %d times, want 3", got)
	}
	if cost := s.M.SyncBytes - before; cost > 256<<10 {
		t.Errorf("catch-up of three texts cost %d bytes", cost)
	}
}

// TestCatchUpPagesThroughAMissedFile: a member away while a 20 MiB file
// was sent gets all of it, page by page, for about what it missed.
func TestCatchUpPagesThroughAMissedFile(t *testing.T) {
	s := quietGroup(t, 16, 3)
	m0, m2 := s.byName["m0"], s.byName["m2"]
	m2.offline = true
	var ids []ordering.MessageID
	missed := 0
	for i := range 80 {
		chunk := make([]byte, 256<<10)
		copy(chunk, fmt.Sprintf("chunk %d", i))
		out := m0.loop.Handle(s.now, ordering.SendMessage{ContentType: 2, Body: chunk})
		s.apply(m0, out)
		ids = append(ids, out.Sent)
		for _, e := range out.Publish {
			missed += len(e)
		}
		s.advance(20 * time.Millisecond)
	}
	s.advance(2 * time.Second)
	before := s.M.SyncBytes
	m2.offline = false
	s.handle(m2, ordering.PeerJoined{})
	// While it pages, it knows it is not done: it is syncing (a request
	// is outstanding), or the heads of the others list what it lacks.
	// (It may page before any head lists the file: the others' heads are
	// older than the file, and m1, asking m2, listed what it holds, so m2
	// asked it back at once.)
	unaware := 0
	waitSim(t, s, 30*time.Second, "m2 has the file", func() bool {
		got := deliveredTexts(m2, ids)
		if got > 0 && got < len(ids) && !m2.loop.Syncing() && m2.loop.Missing().OK() {
			unaware++
		}
		return got == len(ids)
	})
	if unaware > 0 {
		t.Errorf("while catching up, m2 was %d times neither syncing nor missing anything", unaware)
	}
	s.advance(10 * time.Second)
	if m := m2.loop.Missing(); !m.OK() {
		t.Errorf("after catching up, m2 says it misses %+v", m)
	}
	if got := deliveredTexts(m2, ids); got != len(ids) {
		t.Errorf("m2 got %d deliveries of %d chunks", got, len(ids))
	}
	cost := s.M.SyncBytes - before
	t.Logf("missed %d bytes, catch-up %d bytes (%.2fx)", missed, cost, float64(cost)/float64(missed))
	if cost > missed*3/2+64<<10 {
		t.Errorf("catch-up cost %d bytes for %d missed", cost, missed)
	}
}

// waitSim advances the simulation until cond holds, at most d.
func waitSim(t *testing.T, s *Sim, d time.Duration, what string, cond func() bool) {
	t.Helper()
	waitSimBy(t, s, d, 100*time.Millisecond, what, cond)
}

// waitSimBy is waitSim in steps of step, for a test that times what it
// waits for.
func waitSimBy(t *testing.T, s *Sim, d, step time.Duration, what string, cond func() bool) {
	t.Helper()
	end := s.now.Add(d)
	for !cond() {
		if !s.now.Before(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		s.advance(step)
	}
}

// TestRemovedMemberIsToldOnce: a removed member that keeps asking gets the
// commit that removed it (and the votes for that branch) once, from the
// first member it asks, then bare refusals of a few dozen bytes, which
// count the refusers' votes on that branch all the same: its requests list
// the opaque epoch the commit made, so the others know it holds it (each
// member it asked sent it the commit once).
func TestRemovedMemberIsToldOnce(t *testing.T) {
	s := quietGroup(t, 17, 4)
	m0, m3 := s.byName["m0"], s.byName["m3"]
	m3.offline = true // it misses its removal, and learns it by asking
	s.handle(m0, ordering.RemoveMember{Identity: "m3"})
	s.advance(5 * time.Second)
	told, bare, bareBytes := map[string]int{}, 0, 0
	s.onHandle = func(n *node, ev ordering.Event) {
		if n != m3 {
			return
		}
		if r, ok := ev.(ordering.SyncResponse); ok && r.Err == nil {
			resp, err := ordering.ParseSyncResponse(r.Body)
			if err != nil || resp.Status != 3 {
				return
			}
			if len(resp.Envelopes) > 0 {
				told[resp.Tip.String()]++
			} else {
				bare++
				bareBytes += len(r.Body)
			}
		}
	}
	// Heads from the others keep coming: m3 asks again and again.
	m3.offline = false
	for range 10 {
		for _, m := range []string{"m0", "m1", "m2"} {
			s.handle(s.byName[m], ordering.PeerJoined{})
		}
		s.advance(5 * time.Second)
	}
	s.onHandle = nil
	if !m3.loop.Removed() {
		t.Fatal("m3 does not know it was removed")
	}
	total := 0
	for _, n := range told {
		total += n
	}
	if total != 1 {
		t.Errorf("m3 was sent its removal %d times, want once: the others see from its requests that it holds the removing commit", total)
	}
	if bare == 0 {
		t.Fatalf("m3 asked no more after it was told: the test does not test the repeat")
	}
	if bareBytes/bare > 64 {
		t.Errorf("a repeated refusal takes %d bytes", bareBytes/bare)
	}
	t.Logf("told %d times, then %d bare refusals of %d bytes", total, bare, bareBytes/bare)
}

// TestLeaveWithNobodyToCommitItMakesNoEpochs: a member that leaves while
// the only other member is offline proposes its removal and waits; it
// does not commit empty epochs for ever (it made one every few hundred
// milliseconds). The other member, back, commits the removal. A member
// alone in its group that leaves is out at once.
func TestLeaveWithNobodyToCommitItMakesNoEpochs(t *testing.T) {
	s := quietGroup(t, 18, 2)
	m0, m1 := s.byName["m0"], s.byName["m1"]
	m1.offline = true
	epoch := m0.loop.Tip().Number
	s.handle(m0, ordering.Leave{})
	s.advance(60 * time.Second)
	if got := m0.loop.Tip().Number; got != epoch {
		t.Fatalf("m0 went from epoch %d to %d while nobody could commit its departure", epoch, got)
	}
	m1.offline = false
	waitSim(t, s, 60*time.Second, "m0 out of the group", func() bool { return m0.loop.Removed() })
	if got := m1.loop.Tip().Members; len(got) != 1 || got[0] != "m1" {
		t.Errorf("m1's group has members %v, want m1 alone", got)
	}

	// m1, alone now, leaves too.
	out := m1.loop.Handle(s.now, ordering.Leave{})
	s.apply(m1, out)
	if !m1.loop.Removed() {
		t.Errorf("a member alone in its group is still in after leaving")
	}
	if len(envelopesOf(out, ordering.KindHandshake)) > 0 {
		t.Errorf("leaving alone sent a handshake")
	}
}

// TestALeaveMissedByTheOnlyOtherMemberIsCommittedOnceItIsBack: in a group
// of two, m0 leaves while m1, which had heard from m0 before, is away. A
// proposal is in no head's digest, so m1 does not learn from m0's heads
// that it lacks it, and m0 cannot commit its own leave: with the landed
// code m0 stayed in the group for good (the test above passed only
// because m1 had not yet heard from anyone, and its join's first ask
// brought the proposal). m0, whose proposal waits past the committers'
// time, asks m1 on its head; m1 finds the proposal among what m0 holds,
// asks back for it, and commits it.
func TestALeaveMissedByTheOnlyOtherMemberIsCommittedOnceItIsBack(t *testing.T) {
	s := quietGroup(t, 18, 2)
	m0, m1 := s.byName["m0"], s.byName["m1"]
	s.advance(40 * time.Second) // m1 hears m0's keepalive head: its join's ask is done
	m1.offline = true
	s.handle(m0, ordering.Leave{})
	s.advance(60 * time.Second)
	if m0.loop.Removed() {
		t.Fatal("m0 is out while m1, the only member that can commit its leave, is away")
	}
	m1.offline = false
	waitSim(t, s, 60*time.Second, "m0 out of the group", func() bool { return m0.loop.Removed() })
	if got := m1.loop.Tip().Members; len(got) != 1 || got[0] != "m1" {
		t.Errorf("m1's group has members %v, want m1 alone", got)
	}
}

// TestSendsAcrossTwoQuickCrashesUseFreshKeys: a member that crashes, is
// restored, sends, and crashes again before its next snapshot must not
// send on key generations it used before: its first restore jumped its
// sending ratchet past the snapshot, and the second must start past that
// jump. (The landed code jumped from the same snapshot twice: the message
// sent after the second restart reused the first one's generation, key
// and nonce, and every receiver refused it as already consumed.)
func TestSendsAcrossTwoQuickCrashesUseFreshKeys(t *testing.T) {
	s := quietGroup(t, 19, 3)
	m1, m2 := s.byName["m1"], s.byName["m2"]
	var sent []ordering.MessageID
	for i := range 3 {
		m1.up, m1.loop = false, nil // crash: what it persisted stays
		s.restart(m1)
		out := m1.loop.Handle(s.now, ordering.SendMessage{ContentType: 1, Body: fmt.Appendf(nil, "after restart %d", i)})
		s.apply(m1, out)
		sent = append(sent, out.Sent)
		s.advance(time.Second) // less than SnapshotInterval
	}
	// Restarts in a row with nothing sent must not add jump to jump past
	// what receivers accept (MaxForwardDistance).
	for range 4 {
		m1.up, m1.loop = false, nil
		s.restart(m1)
		s.advance(time.Second)
	}
	out := m1.loop.Handle(s.now, ordering.SendMessage{ContentType: 1, Body: []byte("after four quiet restarts")})
	s.apply(m1, out)
	sent = append(sent, out.Sent)
	s.advance(10 * time.Second)
	for i, id := range sent {
		if got := m2.delivered[id]; got != 1 {
			t.Errorf("message sent after restart %d delivered %d times at m2, want once", i, got)
		}
	}
}

// TestMissedRunOfMessagesAllArriveAfterALaterOne: a member cut off while
// another sends hundreds of messages in one epoch hears the sender's next
// message first, when it comes back, and the missed ones through
// catch-up afterwards. Opening the later message skips the generations in
// between; their keys must all be kept until the messages come. (A chaos
// run of real daemons lost a file so: a window of 128 skipped keys kept
// both ends of a gap of about 140 generations, and the chunks in its
// middle were refused as consumed.)
func TestMissedRunOfMessagesAllArriveAfterALaterOne(t *testing.T) {
	s := quietGroup(t, 23, 3)
	m1, m2 := s.byName["m1"], s.byName["m2"]
	m2.offline = true
	var sent []ordering.MessageID
	send := func(body string) {
		out := m1.loop.Handle(s.now, ordering.SendMessage{ContentType: 1, Body: []byte(body)})
		s.apply(m1, out)
		sent = append(sent, out.Sent)
	}
	for i := range 600 {
		send(fmt.Sprintf("missed %d", i))
		if i%100 == 99 {
			s.advance(time.Second)
		}
	}
	m2.offline = false
	send("the first m2 hears")
	s.advance(30 * time.Second)
	lost := 0
	for _, id := range sent {
		if got := m2.delivered[id]; got != 1 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("m2 has %d of m1's %d messages other than once", lost, len(sent))
	}
}

// TestLeaveSendsASelfRemoveAnotherMemberCommits: a member that leaves a
// group whose members all support SelfRemove (draft-ietf-mls-extensions)
// sends one, as a PublicMessage, and another member commits it: the
// others are on one epoch without it, and it knows it is out.
func TestLeaveSendsASelfRemoveAnotherMemberCommits(t *testing.T) {
	s := quietGroup(t, 24, 3)
	m1 := s.byName["m1"]
	out := m1.loop.Handle(s.now, ordering.Leave{})
	proposals := 0
	for _, e := range envelopesOf(out, ordering.KindHandshake) {
		env, _ := ordering.DecodeEnvelope(e)
		var m wire.MLSMessage
		if err := codec.Unmarshal(env.Payload, &m); err != nil {
			t.Fatal(err)
		}
		if m.PublicMessage == nil {
			t.Fatalf("leave sent a %v, want a PublicMessage", m.WireFormat)
		}
		if _, ok := m.PublicMessage.Content.Proposal.(*wire.SelfRemove); !ok {
			t.Fatalf("leave proposed %T, want a SelfRemove", m.PublicMessage.Content.Proposal)
		}
		proposals++
	}
	if proposals != 1 {
		t.Fatalf("leave sent %d proposals, want one SelfRemove", proposals)
	}
	s.apply(m1, out)
	waitSim(t, s, 30*time.Second, "m1 out of the group", func() bool { return m1.loop.Removed() })
	s.advance(5 * time.Second)
	m0, m2 := s.byName["m0"], s.byName["m2"]
	if m0.loop.Tip().ID != m2.loop.Tip().ID || len(m0.loop.Tip().Members) != 2 || slices.Contains(m0.loop.Tip().Members, "m1") {
		t.Errorf("m0 at epoch %d with %v, m2 at epoch %d: want one epoch of m0 and m2", m0.loop.Tip().Number, m0.loop.Tip().Members, m2.loop.Tip().Number)
	}
}
