package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// largeEpoch is a settled group of three whose current epoch carries a
// file: chunks of 256 KiB application messages from m0, size bytes in
// all, sent one by one and delivered to everyone.
func largeEpoch(t *testing.T, size int) *Sim {
	t.Helper()
	cfg := DefaultConfig(15, 3)
	cfg.MessageRate, cfg.OpRate, cfg.DropRate, cfg.DupRate = 0, 0, 0, 0
	s := New(cfg)
	s.setup()
	if !s.setupOK {
		t.Fatal("setup failed")
	}
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
	cfg := DefaultConfig(16, 3)
	cfg.MessageRate, cfg.OpRate, cfg.DropRate, cfg.DupRate = 0, 0, 0, 0
	s := New(cfg)
	s.setup()
	if !s.setupOK {
		t.Fatal("setup failed")
	}
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
	// While it pages, it knows what it lacks: the heads of the others
	// list the epoch's messages and bytes.
	var most ordering.Missing
	waitSim(t, s, 30*time.Second, "m2 has the file", func() bool {
		if m := m2.loop.Missing(); m.Messages > most.Messages {
			most = m
		}
		return deliveredTexts(m2, ids) == len(ids)
	})
	if most.Messages < len(ids)/2 || most.Bytes < uint64(missed/2) {
		t.Errorf("while catching up, m2 saw at most %d messages (%d bytes) missing of %d (%d)", most.Messages, most.Bytes, len(ids), missed)
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
	end := s.now.Add(d)
	for !cond() {
		if !s.now.Before(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		s.advance(100 * time.Millisecond)
	}
}
