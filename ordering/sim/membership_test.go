package sim

import (
	"errors"
	"testing"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
)

// The attacks of issue 14, each against real ordering loops over real MLS:
// a peer that reaches the group's topic (mallory), a removed member (m3),
// and replays of what members send.

// closedGroup is a settled group of four (m0..m3) and an outsider, mallory,
// holding a group of its own under the same group id: it can make valid
// MLS messages and heads, just not for this group.
func closedGroup(t *testing.T) (*Sim, *node) {
	t.Helper()
	s := quietGroup(t, 14, 4, func(cfg *Config) {
		cfg.Ordering.Retention = 4
	})
	s.handle(s.byName["m2"], ordering.UpdateKeys{})
	s.advance(10 * time.Second)
	mallory := s.newNode("mallory")
	ml, out, err := ordering.Create(mallory.cfg, []byte("sim group"), s.bundleFor(mallory), s.now)
	if err != nil {
		t.Fatal(err)
	}
	mallory.loop = ml
	mallory.store.apply(out.Persist)
	mallory.up = false // its own group is not under test; it reaches members only by hand
	return s, mallory
}

// envelopesOf returns the envelopes of kind in out.Publish.
func envelopesOf(out *ordering.Output, kind ordering.Kind) [][]byte {
	var envs [][]byte
	for _, e := range out.Publish {
		if env, err := ordering.DecodeEnvelope(e); err == nil && env.Kind == kind {
			envs = append(envs, e)
		}
	}
	return envs
}

// TestOutsiderIsNeitherAskedNorAnswered: envelopes from a peer that is a
// member of no epoch a member holds (step 1 of the attack: an envelope
// for an epoch nobody holds made members send it their signed catch-up
// requests) are dropped: no catch-up request goes to it, nothing is
// buffered, and the transport is told to ignore them (an epoch the member
// does not hold: it may be behind) or to reject them (one it holds).
func TestOutsiderIsNeitherAskedNorAnswered(t *testing.T) {
	s, mallory := closedGroup(t)
	m1 := s.byName["m1"]
	out := mallory.loop.Handle(s.now, ordering.SendMessage{ContentType: 1, Body: []byte("let me in")})
	apps := envelopesOf(out, ordering.KindApplication)
	heads := envelopesOf(mallory.loop.Handle(s.now.Add(time.Minute), ordering.Tick{}), ordering.KindHead)
	if len(apps) == 0 || len(heads) == 0 {
		t.Fatalf("mallory made %d application envelopes and %d heads", len(apps), len(heads))
	}
	before := m1.loop.Stats()
	for i, e := range append(apps, heads...) {
		for range 3 {
			out := m1.loop.Handle(s.now, ordering.Inbound{From: "mallory", Data: e})
			s.apply(m1, out)
			if len(out.Requests) > 0 {
				t.Errorf("envelope %d: m1 sent %d catch-up requests to %s", i, len(out.Requests), out.Requests[0].To)
			}
			if out.Verdict != ordering.VerdictIgnore {
				t.Errorf("envelope %d for an epoch m1 does not hold: verdict %v, want ignore", i, out.Verdict)
			}
		}
	}
	if got := m1.loop.Stats().Ignored - before.Ignored; got != 3*(len(apps)+len(heads)) {
		t.Errorf("%d envelopes ignored, want %d", got, 3*(len(apps)+len(heads)))
	}
	// The same payload labelled with the group's epoch: it names an epoch
	// m1 holds, whose members mallory is not among.
	env, _ := ordering.DecodeEnvelope(apps[0])
	relabelled := (&ordering.Envelope{Kind: env.Kind, Epoch: m1.loop.Tip().ID, Payload: env.Payload}).Encode()
	out = m1.loop.Handle(s.now, ordering.Inbound{From: "mallory", Data: relabelled})
	if out.Verdict != ordering.VerdictReject || len(out.Requests) > 0 {
		t.Errorf("envelope in m1's epoch from a non-member: verdict %v, %d requests; want reject, none", out.Verdict, len(out.Requests))
	}
	// A member's envelope is accepted: the verdict is not always the same.
	own := m1.loop.Handle(s.now, ordering.SendMessage{ContentType: 1, Body: []byte("hi")})
	s.apply(m1, own)
	m2 := s.byName["m2"]
	out = m2.loop.Handle(s.now, ordering.Inbound{From: "m1", Data: envelopesOf(own, ordering.KindApplication)[0]})
	s.apply(m2, out)
	if out.Verdict != ordering.VerdictAccept || len(out.Deliveries) != 1 {
		t.Errorf("a member's message: verdict %v, %d deliveries; want accept, 1", out.Verdict, len(out.Deliveries))
	}
}

// captureRequest makes m1 miss a commit and come back, and returns the
// first catch-up request it sends (to whom, and the body).
func captureRequest(t *testing.T, s *Sim) (to string, body []byte) {
	return captureRequestOf(t, s, "m1")
}

// captureRequestOf is captureRequest for the member named.
func captureRequestOf(t *testing.T, s *Sim, name string) (to string, body []byte) {
	t.Helper()
	m1 := s.byName[name]
	m1.offline = true
	s.handle(s.byName["m0"], ordering.UpdateKeys{})
	s.advance(10 * time.Second)
	s.onHandle = func(n *node, ev ordering.Event) {
		if r, ok := ev.(ordering.SyncRequest); ok && r.From == name && body == nil {
			to, body = n.name, r.Body
		}
	}
	m1.offline = false
	s.advance(40 * time.Second)
	s.onHandle = nil
	if body == nil {
		t.Fatal("m1 sent no catch-up request")
	}
	return to, body
}

// serve hands n a catch-up request as if from the authenticated peer from
// and returns its answer.
func serve(t *testing.T, s *Sim, n *node, from string, body []byte, at time.Time) *ordering.SyncResponseForm {
	t.Helper()
	out := n.loop.Handle(at, ordering.SyncRequest{From: from, ID: 1, Body: body})
	s.apply(n, out)
	if len(out.Responses) != 1 {
		t.Fatalf("%s answered %d times", n.name, len(out.Responses))
	}
	r, err := ordering.ParseSyncResponse(out.Responses[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSyncRequestsServeOnlyTheMemberThatSignedThem: a catch-up request is
// bound to its requester, its responder and its time (step 2 of the
// attack: a member's request replayed to another member got a GroupInfo),
// and one that is not signed by a member of an epoch held here gets
// nothing, not even an epoch id (an unsigned request naming the tip was
// served commits, messages and heads).
func TestSyncRequestsServeOnlyTheMemberThatSignedThem(t *testing.T) {
	s, mallory := closedGroup(t)
	to, body := captureRequest(t, s)
	asked := s.byName[to]
	other := s.byName["m2"]
	if to == "m2" {
		other = s.byName["m3"]
	}
	// The genuine exchange is served: the checks below can fail.
	if r := serve(t, s, asked, "m1", body, s.now); r.Status != 1 || r.Empty() {
		t.Fatalf("the genuine request: status %d, empty %v", r.Status, r.Empty())
	}
	req, err := ordering.ParseSyncRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(f func(*ordering.SyncRequestForm)) []byte {
		c := *req
		f(&c)
		return c.Encode()
	}
	tip := asked.loop.Tip().ID
	malloryKey := mallory.loop.State().Signer().PublicKey()
	cases := []struct {
		what string
		to   *node
		from string
		body []byte
		at   time.Time
	}{
		{"replayed by an outsider to the member asked", asked, "mallory", body, s.now},
		{"replayed by an outsider to another member", other, "mallory", body, s.now},
		{"replayed to another member over the requester's own stream", other, "m1", body, s.now},
		{"replayed eleven minutes later", asked, "m1", body, s.now.Add(11 * time.Minute)},
		{"unsigned, naming the tip", asked, "mallory", forged(func(r *ordering.SyncRequestForm) {
			r.Requester, r.Responder, r.Have = "mallory", to, []ordering.EpochID{tip}
			r.SignatureKey, r.Signature = make([]byte, 32), make([]byte, 64)
		}), s.now},
		{"signed by an outsider, naming the tip", asked, "mallory", forged(func(r *ordering.SyncRequestForm) {
			r.Requester, r.Responder, r.Have = "mallory", to, []ordering.EpochID{tip}
			r.SignatureKey = malloryKey
		}), s.now},
		{"a member's request changed to ask for a GroupInfo", asked, "m1", forged(func(r *ordering.SyncRequestForm) {
			r.WantGroupInfo = true
		}), s.now},
		{"a member's request readdressed", other, "m1", forged(func(r *ordering.SyncRequestForm) {
			r.Responder = other.name
		}), s.now},
	}
	for _, c := range cases {
		before := c.to.loop.Stats().Unauthenticated
		r := serve(t, s, c.to, c.from, c.body, c.at)
		if !r.Empty() || r.Status == 1 || r.Status == 2 || r.Status == 6 {
			t.Errorf("%s: served status %d with tip %v, %d envelopes, %d heads, GroupInfo %v",
				c.what, r.Status, r.Tip, len(r.Envelopes), len(r.Heads), len(r.GroupInfo) > 0)
		}
		if c.to.loop.Stats().Unauthenticated != before+1 {
			t.Errorf("%s: not counted as unauthenticated", c.what)
		}
	}
	// Once the request's epochs are pruned everywhere, the landed code
	// answered any holder of it with a GroupInfo to rejoin with.
	for range 6 {
		s.handle(s.byName["m0"], ordering.UpdateKeys{})
		s.advance(5 * time.Second)
	}
	for _, n := range []*node{asked, other} {
		if r := serve(t, s, n, "mallory", body, s.now); !r.Empty() {
			t.Errorf("replayed to %s after its epochs were pruned: status %d, GroupInfo %v", n.name, r.Status, len(r.GroupInfo) > 0)
		}
	}
}

// TestExternalCommitsOnlyResyncAMembersOwnLeaf: a GroupInfo with
// external_pub that leaked to an outsider, or that a removed member kept,
// does not let it in (step 3 of the attack: an external commit from
// anyone was accepted, and its lone epoch won the fork choice).
func TestExternalCommitsOnlyResyncAMembersOwnLeaf(t *testing.T) {
	s, mallory := closedGroup(t)
	m0, m1, m3 := s.byName["m0"], s.byName["m1"], s.byName["m3"]
	leak := func() *wire.GroupInfo {
		gi, err := m0.loop.State().GroupInfo(group.GroupInfoOptions{WithTree: true, WithExternalPub: true})
		if err != nil {
			t.Fatal(err)
		}
		return gi
	}
	try := func(what, from string, sc *group.StagedCommit, epoch ordering.EpochID) {
		t.Helper()
		tip := m1.loop.Tip().ID
		env := (&ordering.Envelope{Kind: ordering.KindHandshake, Epoch: epoch, Payload: sc.Message}).Encode()
		out := m1.loop.Handle(s.now, ordering.Inbound{From: from, Data: env})
		s.apply(m1, out)
		s.advance(5 * time.Second)
		if m1.loop.Tip().ID != tip {
			t.Errorf("%s: m1 moved to epoch %d", what, m1.loop.Tip().Number)
		}
		if out.Verdict != ordering.VerdictReject {
			t.Errorf("%s: verdict %v, want reject", what, out.Verdict)
		}
	}

	// An outsider joining as itself: no leaf of its own to resync.
	sc, err := group.JoinExternal(mallory.cfg.MLS, leak(), mallory.loop.State().Signer(),
		group.ExternalJoinOptions{Credential: wire.NewBasicCredential([]byte("mallory"))})
	if err != nil {
		t.Fatal(err)
	}
	// Sent by a member's peer (as if relayed by one, or by a member
	// colluding): the envelope's author passes, the commit must not.
	try("an outsider's external commit", "m2", sc, m1.loop.Tip().ID)

	// A removed member with the GroupInfo of an epoch after its removal.
	s.handle(m0, ordering.RemoveMember{Identity: "m3"})
	s.advance(10 * time.Second)
	if !m3.loop.Removed() {
		t.Fatal("m3 not removed")
	}
	old := m3.store.latestState(t, m3.cfg.MLS)
	sc, err = group.JoinExternal(m3.cfg.MLS, leak(), old.Signer(), group.ExternalJoinOptions{Credential: wire.NewBasicCredential([]byte("m3"))})
	if err != nil {
		t.Fatal(err)
	}
	try("a removed member's external commit", "m2", sc, m1.loop.Tip().ID)

	// A member's genuine resync is still accepted.
	m2 := s.byName["m2"]
	gi := leak()
	var own group.LeafIndex
	var rt wire.RatchetTree
	data, _ := gi.Extensions.Find(wire.ExtensionRatchetTree)
	if err := codec.Unmarshal(data, &rt); err != nil {
		t.Fatal(err)
	}
	key := m2.loop.State().Signer().PublicKey()
	for i := 0; i < len(rt); i += 2 {
		if rt[i] != nil && rt[i].Leaf != nil && string(rt[i].Leaf.SignatureKey) == string(key) {
			own = group.LeafIndex(i / 2)
		}
	}
	sc, err = group.JoinExternal(m2.cfg.MLS, gi, m2.loop.State().Signer(), group.ExternalJoinOptions{
		Credential: m2.loop.State().Tree().Leaf(m2.loop.State().OwnLeaf()).Credential, Resync: &own})
	if err != nil {
		t.Fatal(err)
	}
	env := (&ordering.Envelope{Kind: ordering.KindHandshake, Epoch: m1.loop.Tip().ID, Payload: sc.Message}).Encode()
	out := m1.loop.Handle(s.now, ordering.Inbound{From: "m2", Data: env})
	s.apply(m1, out)
	for _, no := range out.Notices {
		if no.Kind == ordering.NoticeRejected && errors.Is(no.Err, ordering.ErrExternalCommit) {
			t.Errorf("a member's own resync refused: %v", no.Err)
		}
	}
	if len(out.NewEpochs) != 1 {
		t.Errorf("a member's own resync made %d epochs, want 1", len(out.NewEpochs))
	}
}

// TestRemovedMemberGetsNoGroupInfo: a removed member's own, genuine
// request, made while it was a member and replayed after its removal,
// gets at most the refusal that names its removal, never a GroupInfo or
// the group's messages; changed to ask for a GroupInfo, its signature no
// longer holds.
func TestRemovedMemberGetsNoGroupInfo(t *testing.T) {
	s, _ := closedGroup(t)
	to, body := captureRequestOf(t, s, "m3")
	m0, m3 := s.byName["m0"], s.byName["m3"]
	s.handle(m0, ordering.RemoveMember{Identity: "m3"})
	s.advance(10 * time.Second)
	if !m3.loop.Removed() {
		t.Fatal("m3 not removed")
	}
	req, err := ordering.ParseSyncRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	req.WantGroupInfo = true
	for i, b := range [][]byte{body, req.Encode()} {
		r := serve(t, s, s.byName[to], "m3", b, s.now)
		if len(r.GroupInfo) > 0 || r.Status == 1 || r.Status == 2 || r.Status == 6 {
			t.Errorf("request %d: a removed member got status %d, GroupInfo %v, %d envelopes", i, r.Status, len(r.GroupInfo) > 0, len(r.Envelopes))
		}
	}
}

// latestState restores the newest epoch the store saved.
func (m *memStore) latestState(t *testing.T, cfg *group.Config) *group.State {
	t.Helper()
	var last ordering.SavedEpoch
	for _, e := range m.epochs {
		if e.Snapshot != nil && e.Number >= last.Number {
			last = e
		}
	}
	st, err := group.Restore(cfg, last.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
