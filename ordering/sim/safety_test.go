package sim

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/ordering"
)

// advance runs the simulation for d.
func (s *Sim) advance(d time.Duration) {
	t := s.now.Add(d)
	for s.q.Len() > 0 && !s.q.peek().at.After(t) {
		s.step()
	}
	s.now = t
}

// quietGroup sets up a group of members with no traffic of its own (no
// messages, no membership changes, no loss or duplicates), for a test to
// drive by hand; tune changes the scenario first.
func quietGroup(t testing.TB, seed uint64, members int, tune ...func(*Config)) *Sim {
	t.Helper()
	cfg := DefaultConfig(seed, members)
	cfg.MessageRate, cfg.OpRate, cfg.DropRate, cfg.DupRate = 0, 0, 0, 0
	for _, f := range tune {
		f(&cfg)
	}
	s := New(cfg)
	s.setup()
	if !s.setupOK {
		t.Fatal("setup failed")
	}
	return s
}

// view is what a member has that hostile input must not change: its
// canonical epoch, what it delivered, and everything it persisted.
type view struct {
	tip       ordering.EpochID
	delivered int
	store     [32]byte
}

func viewOf(n *node) view {
	h := sha256.New()
	m := n.store
	h.Write(m.meta)
	ids := make([]ordering.EpochID, 0, len(m.epochs))
	for id := range m.epochs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, id := range ids {
		h.Write(id[:])
		h.Write(m.epochs[id].Snapshot)
	}
	for _, e := range m.log {
		h.Write(e.Epoch[:])
		h.Write(e.Envelope)
	}
	var keys []string
	for id := range m.delivered {
		keys = append(keys, string(id[:]))
	}
	for id, rec := range m.outbox {
		keys = append(keys, string(id[:])+string(rec))
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Write([]byte(k))
	}
	v := view{tip: n.loop.Tip().ID, store: [32]byte(h.Sum(nil))}
	for _, c := range n.delivered {
		v.delivered += c
	}
	return v
}

// hostile feeds data to n as if from peer and checks that it was refused
// with a notice and changed nothing.
func hostile(t *testing.T, s *Sim, n *node, peer, what string, data []byte, wantErr error) {
	t.Helper()
	before := viewOf(n)
	out := n.loop.Handle(s.now, ordering.Inbound{From: peer, Data: data})
	s.apply(n, out)
	if len(out.Deliveries) > 0 {
		t.Errorf("%s: delivered %d messages", what, len(out.Deliveries))
	}
	if after := viewOf(n); after != before {
		t.Errorf("%s: changed the member's state (tip %v -> %v, %d -> %d deliveries, store changed %v)",
			what, before.tip, after.tip, before.delivered, after.delivered, before.store != after.store)
	}
	if wantErr == nil {
		return
	}
	for _, no := range out.Notices {
		if no.Kind == ordering.NoticeRejected && errors.Is(no.Err, wantErr) {
			return
		}
	}
	t.Errorf("%s: no rejection notice with %v; notices %+v", what, wantErr, out.Notices)
}

// TestHostileInputChangesNothing: tampered and replayed messages, messages
// from a non-member and from a removed member are refused by a member of a
// real group and leave its state (canonical epoch, deliveries, everything
// persisted) exactly as it was.
func TestHostileInputChangesNothing(t *testing.T) {
	s := quietGroup(t, 11, 4)
	m0, m1, m3 := s.byName["m0"], s.byName["m1"], s.byName["m3"]
	// One commit everyone processes, so that there is one to replay.
	s.handle(s.byName["m2"], ordering.UpdateKeys{})
	s.advance(10 * time.Second)

	// A message from m0 that only m1 gets, by hand.
	out := m0.loop.Handle(s.now, ordering.SendMessage{ContentType: 1, Body: []byte("hello")})
	m0.store.apply(out.Persist)
	var app []byte
	for _, e := range out.Publish {
		if env, _ := ordering.DecodeEnvelope(e); env.Kind == ordering.KindApplication {
			app = e
		}
	}
	if app == nil {
		t.Fatal("m0 published no application message")
	}

	// Tampered: one bit of the ciphertext flipped, or the envelope cut.
	bad := bytes.Clone(app)
	bad[len(bad)-5] ^= 1
	hostile(t, s, m1, "m0", "tampered ciphertext", bad, framing.ErrContentDecryption)
	hostile(t, s, m1, "m0", "truncated envelope", app[:len(app)/2], nil)
	hostile(t, s, m1, "m0", "empty envelope", nil, ordering.ErrMalformedEnvelope)

	// The genuine message is still delivered: the tampered copy consumed
	// no key.
	out = m1.loop.Handle(s.now, ordering.Inbound{From: "m0", Data: app})
	s.apply(m1, out)
	if len(out.Deliveries) != 1 || string(out.Deliveries[0].Body) != "hello" {
		t.Fatalf("genuine message after the tampered one: %d deliveries", len(out.Deliveries))
	}

	// Replayed: the same message again, and an old commit again.
	hostile(t, s, m1, "m0", "replayed application message", app, nil)
	var commit []byte
	for _, e := range m1.store.log {
		if env, _ := ordering.DecodeEnvelope(e.Envelope); env.Kind == ordering.KindHandshake {
			commit = e.Envelope
		}
	}
	if commit == nil {
		t.Fatal("no commit in m1's log")
	}
	hostile(t, s, m1, "m0", "replayed commit", commit, nil)

	// A non-member: a device that made its own group under the same group
	// id. Its messages, in its own epoch or re-labelled with the real
	// one, are refused.
	outsider := s.newNode("mallory")
	ml, mout, err := ordering.Create(outsider.cfg, []byte("sim group"), s.bundleFor(outsider), s.now)
	if err != nil {
		t.Fatal(err)
	}
	outsider.loop = ml
	mout = ml.Handle(s.now, ordering.SendMessage{ContentType: 1, Body: []byte("let me in")})
	for _, e := range mout.Publish {
		env, _ := ordering.DecodeEnvelope(e)
		if env.Kind != ordering.KindApplication {
			continue
		}
		hostile(t, s, m1, "mallory", "non-member message in its own epoch", e, nil)
		relabelled := (&ordering.Envelope{Kind: env.Kind, Epoch: m1.loop.Tip().ID, Payload: env.Payload}).Encode()
		hostile(t, s, m1, "mallory", "non-member message in the group's epoch", relabelled, ordering.ErrNotMember)
	}
	outsider.up = false // its own group is not under test

	// A removed member: m0 removes m3; m3 then uses the keys of the last
	// epoch it was in to send a message.
	var last ordering.SavedEpoch
	for _, e := range m3.store.epochs {
		if e.Number >= last.Number {
			last = e
		}
	}
	s.handle(m0, ordering.RemoveMember{Identity: "m3"})
	s.advance(10 * time.Second)
	if !m3.loop.Removed() || m1.loop.Tip().Number <= last.Number {
		t.Fatalf("m3 removed %v; m1 at epoch %d", m3.loop.Removed(), m1.loop.Tip().Number)
	}
	old, err := group.Restore(m3.cfg.MLS, last.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.SkipOwnGenerations(1024); err != nil {
		t.Fatal(err)
	}
	msg := ordering.AppMessage{ID: ordering.MessageID{1, 2, 3}, ContentType: 1, Body: []byte("still here")}
	enc, err := old.EncryptApplication(codec.MustMarshal(&msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	env := (&ordering.Envelope{Kind: ordering.KindApplication, Epoch: last.ID, Payload: enc}).Encode()
	hostile(t, s, m1, "m3", "message from a removed member", env, ordering.ErrSenderRemoved)

	// Its commit on that epoch is a valid MLS commit, so it is kept as a
	// losing sibling (the fork choice must see the same messages
	// everywhere), but the canonical epoch does not move.
	tip := m1.loop.Tip().ID
	sc, err := old.Commit(group.CommitOptions{ForcePath: true, Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	cenv := (&ordering.Envelope{Kind: ordering.KindHandshake, Epoch: last.ID, Payload: sc.Message}).Encode()
	out = m1.loop.Handle(s.now, ordering.Inbound{From: "m3", Data: cenv})
	s.apply(m1, out)
	s.advance(10 * time.Second)
	for _, n := range []*node{m0, m1, s.byName["m2"]} {
		if n.loop.Tip().ID != tip {
			t.Errorf("%s moved off the canonical epoch after a removed member's commit", n.name)
		}
	}
	if r := s.check(); len(r.Violations) > 0 {
		t.Errorf("properties after the hostile input: %s", strings.Join(r.Violations, "; "))
	}
}
