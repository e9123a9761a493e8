package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	binenc "encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/node"
	"github.com/parley-p2p/parley/ordering"
)

// TestOutsiderWithAValidIdentityGetsNothing runs three daemons that form a
// group, and beside them an outsider: a fresh libp2p identity in the test
// process that knows what the threat model grants (a member's address,
// the group id, and the gossip topic, which it learns from the member's
// subscriptions when it connects) and nothing else. It tries the steps of
// issue 14's attack and a flood; it must get no catch-up request from a
// member, no group data over the sync and address protocols, and the
// group must go on with its three members.
func TestOutsiderWithAValidIdentityGetsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds the binary and runs three daemons")
	}
	if raceEnabled {
		t.Skip("run without -race (the daemons are not race-built; .ci/run runs it in its own step)")
	}
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	names := []string{"alice", "bob", "carol"}
	peers := formCrew(t, names...)
	ids := map[string]api.Identity{}
	for _, n := range names {
		var id api.Identity
		decode(t, peers[n].must("id", "--json"), &id)
		ids[n] = id
	}
	alice := peers["alice"]
	var sent []sentMsg
	send := func(from, text string) {
		peers[from].must("send", "crew", text)
		sent = append(sent, sentMsg{text, names})
	}
	send("alice", "alice: hello crew")
	send("bob", "bob: hello alice and carol")
	checkHistories(t, peers, names, "crew", sent)
	step("three daemons formed crew through invites and talked")

	// The outsider knows alice's address and the group id, which the
	// threat model takes as known.
	gid, err := hex.DecodeString(alice.group("crew").ID)
	if err != nil || len(gid) != 32 {
		t.Fatalf("alice's group id %q: %v", alice.group("crew").ID, err)
	}
	aliceInfo := loopbackAddrInfo(t, ids["alice"])
	mallory := newOutsider(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := mallory.h.Connect(ctx, aliceInfo); err != nil {
		t.Fatalf("the outsider cannot connect to alice: %v", err)
	}
	// The topic: alice announces her subscriptions to every peer that
	// speaks gossipsub with her.
	var topics []string
	waitFor(t, 15*time.Second, "alice's gossipsub subscriptions", func() bool {
		topics = mallory.subs.of(aliceInfo.ID, "parley/g/")
		return len(topics) > 0
	})
	if len(topics) != 1 {
		t.Fatalf("alice announces group topics %q, want the one of crew", topics)
	}
	mallory.join(t, topics[0])
	waitFor(t, 15*time.Second, "alice among the outsider's topic peers", func() bool {
		return slices.Contains(mallory.topic.ListPeers(), aliceInfo.ID)
	})
	// Members publish their heads when a peer comes to the topic, and
	// alice relays the group's messages to the peers of her mesh: the
	// outsider sees their epoch ids, which travel in clear.
	send("carol", "carol: someone new on the topic?")
	waitFor(t, 20*time.Second, "an envelope of the group at the outsider", func() bool {
		return len(mallory.observedEpochs()) > 0
	})
	step(fmt.Sprintf("outsider %s on topic %s, sees epoch ids", mallory.h.ID(), topics[0]))

	// 1. Decodable envelopes for epochs no member holds: a member that
	// asked their sender for catch-up would hand it a request signed by a
	// member (on the code before issue 14's fix, it did).
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for i := range 10 {
		kind := ordering.KindApplication
		if i%2 == 1 {
			kind = ordering.KindHead
		}
		mallory.publish(t, ctx, kind, 200)
		<-tick.C
	}
	if got := mallory.syncAsks(ids); len(got) != 0 {
		t.Errorf("after envelopes for unknown epochs, members sent the outsider %d sync requests %q, want none", len(got), got)
	}
	step("step 1: published 10 envelopes for unknown epochs over 5 s")

	// 2. Catch-up and address requests straight to alice.
	outsiderRequests(t, ctx, mallory, aliceInfo.ID, gid, ids)
	step("step 2: sent alice three sync requests and an address request")

	// 3. A flood of large envelopes for random epochs; then the group
	// still works.
	const floodCount, floodSize = 300, 64 << 10
	for i := range floodCount {
		mallory.publish(t, ctx, []ordering.Kind{ordering.KindApplication, ordering.KindHandshake, ordering.KindHead}[i%3], floodSize)
	}
	waitFor(t, 30*time.Second, "the flood on the wire to alice", func() bool {
		return mallory.bw.GetBandwidthForPeer(aliceInfo.ID).TotalOut >= floodCount*floodSize
	})
	step(fmt.Sprintf("step 3: flooded alice with %d envelopes of %d KiB", floodCount, floodSize>>10))
	send("bob", "bob: still here after the flood")
	for _, n := range []string{"alice", "carol"} {
		waitFor(t, 20*time.Second, "bob's text after the flood at "+n, func() bool {
			for _, m := range peers[n].messages("crew") {
				if m.Text == "bob: still here after the flood" {
					return true
				}
			}
			return false
		})
	}
	checkHistories(t, peers, names, "crew", sent)
	for _, n := range names {
		for _, m := range peers[n].messages("crew") {
			if !slices.Contains(names, m.Sender) {
				t.Errorf("%s has a message from %q: %q", n, m.Sender, m.Text)
			}
		}
		checkMembers(t, peers[n], ids)
	}
	if got := mallory.syncAsks(ids); len(got) != 0 {
		t.Errorf("members sent the outsider %d sync requests in all: %q, want none", len(got), got)
	}
	step("checked the group: bob's text through, three members everywhere, no outsider's message")
}

// outsiderRequests is step 2: the outsider asks alice for catch-up, with
// the epoch ids it saw on the topic, as itself unsigned (all-zero key and
// signature), as bob unsigned, and as itself signed with its own key; and
// for the members' addresses. Every answer must carry nothing of the group.
func outsiderRequests(t *testing.T, ctx context.Context, o *outsider, alice libp2ppeer.ID, gid []byte, ids map[string]api.Identity) {
	t.Helper()
	have := o.observedEpochs()
	slices.Reverse(have) // newest first
	self := o.h.ID().String()
	form := func(requester string) *ordering.SyncRequestForm {
		f := &ordering.SyncRequestForm{
			GroupID:       gid,
			Requester:     requester,
			Responder:     node.MemberID(alice, "alice"),
			Time:          uint64(time.Now().UnixMilli()),
			Have:          have,
			WantVotes:     true,
			WantGroupInfo: true,
			SignatureKey:  make([]byte, 32),
			Signature:     make([]byte, 64),
		}
		rand.Read(f.Nonce[:])
		return f
	}
	signed := form(self)
	signed.SignatureKey, signed.Signature = o.id.Signer.PublicKey(), nil
	tbs := signed.Encode()
	tbs = tbs[:len(tbs)-1] // less the empty signature<V>, one byte
	// "Parley Sync v2" is ordering's label of sync requests.
	sig, err := node.Suite.SignWithLabel(o.id.Signer, "Parley Sync v2", tbs, nil)
	if err != nil {
		t.Fatal(err)
	}
	signed.Signature = sig
	bobID, err := libp2ppeer.Decode(ids["bob"].PeerID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		req  *ordering.SyncRequestForm
	}{
		{"unsigned, as itself", form(self)},
		{"unsigned, as bob", form(node.MemberID(bobID, "bob"))},
		{"signed with its own key", signed},
	} {
		frames, err := o.request(ctx, alice, "parley-sync/1", append(slices.Clip(gid), c.req.Encode()...))
		if err != nil || len(frames) != 1 {
			t.Errorf("sync request (%s), naming %d seen epochs: %d frames, %v; want one answer", c.name, len(have), len(frames), err)
			continue
		}
		resp, err := ordering.ParseSyncResponse(frames[0])
		if err != nil {
			t.Errorf("sync request (%s): the answer does not parse: %v", c.name, err)
			continue
		}
		if !resp.Empty() {
			t.Errorf("sync request (%s): status %d, tip %x, %d envelopes, %d heads, %d-byte GroupInfo; want nothing of the group",
				c.name, resp.Status, resp.Tip[:], len(resp.Envelopes), len(resp.Heads), len(resp.GroupInfo))
			continue
		}
		t.Logf("sync request (%s), naming %d seen epochs: status %d, nothing served", c.name, len(have), resp.Status)
	}
	frames, err := o.request(ctx, alice, "parley-addrs/1", gid)
	for _, f := range frames {
		// An empty address list is one byte, its zero length.
		if len(f) > 1 || bytes.Contains(f, []byte(ids["bob"].PeerID)) || bytes.Contains(f, []byte(ids["carol"].PeerID)) {
			t.Errorf("address request: alice answered %d bytes, want no address", len(f))
		}
	}
	t.Logf("address request: %d frames, %v", len(frames), err)
}

// checkMembers checks that p's daemon lists exactly alice, bob and carol,
// with their peer IDs, as crew's members.
func checkMembers(t *testing.T, p *peer, ids map[string]api.Identity) {
	t.Helper()
	var ms []api.Member
	decode(t, p.must("members", "crew", "--json"), &ms)
	got := map[string]string{}
	for _, m := range ms {
		got[m.Name] = m.PeerID
	}
	want := map[string]string{}
	for n, id := range ids {
		want[n] = id.PeerID
	}
	if len(ms) != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s lists crew's members %v, want %v", p.name, got, want)
	}
}

// loopbackAddrInfo returns a daemon's peer ID and its TCP address on
// 127.0.0.1.
func loopbackAddrInfo(t *testing.T, id api.Identity) libp2ppeer.AddrInfo {
	t.Helper()
	for _, a := range id.Addrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			ai, err := libp2ppeer.AddrInfoFromString(a)
			if err != nil {
				t.Fatal(err)
			}
			return *ai
		}
	}
	t.Fatalf("%s has no loopback TCP address in %q", id.Name, id.Addrs)
	return libp2ppeer.AddrInfo{}
}

// outsider is a libp2p host with gossipsub, speaking Parley's wire formats
// but holding no group secret: it has its own identity and was never
// invited. It listens on 127.0.0.1 only and runs no discovery.
type outsider struct {
	id    *node.Identity
	h     host.Host
	ps    *pubsub.PubSub
	bw    *metrics.BandwidthCounter
	subs  *subscriptionLog
	topic *pubsub.Topic
	ctx   context.Context

	mu     sync.Mutex
	asked  []askedSync        // the sync requests members sent it
	epochs []ordering.EpochID // epoch ids seen in others' envelopes, in order
	seen   map[ordering.EpochID]bool
}

func newOutsider(t *testing.T) *outsider {
	t.Helper()
	id, err := node.NewIdentity("mallory")
	if err != nil {
		t.Fatal(err)
	}
	o := &outsider{id: id, bw: metrics.NewBandwidthCounter(), subs: &subscriptionLog{topics: map[libp2ppeer.ID][]string{}}, seen: map[ordering.EpochID]bool{}}
	o.h, err = libp2p.New(
		libp2p.Identity(id.Key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.BandwidthReporter(o.bw),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.ctx = ctx
	t.Cleanup(func() { cancel(); o.h.Close() })
	// A member that asks the outsider for catch-up is what step 1 looks
	// for: record it, read the request, and answer nothing.
	o.h.SetStreamHandler("/parley/parley-sync/1", func(s network.Stream) {
		defer s.Reset()
		s.SetDeadline(time.Now().Add(5 * time.Second))
		req, err := readStreamFrame(bufio.NewReader(s))
		o.mu.Lock()
		o.asked = append(o.asked, askedSync{s.Conn().RemotePeer(), len(req), err})
		o.mu.Unlock()
	})
	o.ps, err = pubsub.NewGossipSub(ctx, o.h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(parleyMessageID),
		pubsub.WithSubscriptionFilter(o.subs),
		pubsub.WithPeerOutboundQueueSize(1024),
		pubsub.WithMaxMessageSize(2<<20),
	)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// join subscribes to the topic and records the epoch ids of the envelopes
// others publish on it.
func (o *outsider) join(t *testing.T, name string) {
	t.Helper()
	topic, err := o.ps.Join(name)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	o.topic = topic
	go func() {
		for {
			m, err := sub.Next(o.ctx)
			if err != nil {
				return
			}
			if m.GetFrom() == o.h.ID() {
				continue
			}
			env, err := ordering.DecodeEnvelope(m.GetData())
			if err != nil {
				continue
			}
			o.mu.Lock()
			if !o.seen[env.Epoch] {
				o.seen[env.Epoch] = true
				o.epochs = append(o.epochs, env.Epoch)
			}
			o.mu.Unlock()
		}
	}()
}

// publish sends an envelope of the kind for a random epoch, with size
// random bytes of payload.
func (o *outsider) publish(t *testing.T, ctx context.Context, kind ordering.Kind, size int) {
	t.Helper()
	env := ordering.Envelope{Kind: kind, Payload: make([]byte, size)}
	rand.Read(env.Epoch[:])
	rand.Read(env.Payload)
	if err := o.topic.Publish(ctx, env.Encode()); err != nil {
		t.Fatal(err)
	}
}

func (o *outsider) observedEpochs() []ordering.EpochID {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.epochs)
}

// askedSync is a sync request a member sent the outsider.
type askedSync struct {
	from libp2ppeer.ID
	size int
	err  error // reading it
}

// syncAsks describes the sync requests members sent the outsider, naming
// the daemons by the names in ids.
func (o *outsider) syncAsks(ids map[string]api.Identity) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, a := range o.asked {
		from := a.from.String()
		for n, id := range ids {
			if id.PeerID == from {
				from = n
			}
		}
		out = append(out, fmt.Sprintf("from %s, %d bytes (%v)", from, a.size, a.err))
	}
	return out
}

// request speaks p2p's request/response protocol (p2p/reqresp.go): one
// length-prefixed request frame, then data frames (0x00 || data) up to an
// end frame (0x01) or an error frame (0x02 || code || message). The write
// side stays open until the answer is in.
func (o *outsider) request(ctx context.Context, to libp2ppeer.ID, proto string, body []byte) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s, err := o.h.NewStream(ctx, to, protocol.ID("/parley/"+proto))
	if err != nil {
		return nil, err
	}
	defer s.Reset()
	deadline, _ := ctx.Deadline()
	s.SetDeadline(deadline)
	if _, err := s.Write(append(binenc.AppendUvarint(nil, uint64(len(body))), body...)); err != nil {
		return nil, err
	}
	r := bufio.NewReader(s)
	var frames [][]byte
	for {
		f, err := readStreamFrame(r)
		if err != nil {
			return frames, err
		}
		switch {
		case len(f) == 1 && f[0] == 1:
			return frames, nil
		case len(f) >= 1 && f[0] == 0:
			frames = append(frames, f[1:])
		case len(f) >= 2 && f[0] == 2:
			return frames, fmt.Errorf("error frame, code %d: %q", f[1], f[2:])
		default:
			return frames, fmt.Errorf("bad frame % x", f[:min(len(f), 8)])
		}
	}
}

// readStreamFrame reads a varint-length-prefixed frame of at most 8 MiB.
func readStreamFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binenc.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > 8<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	f := make([]byte, n)
	_, err = io.ReadFull(r, f)
	return f, err
}

// parleyMessageID is p2p's gossip message id: SHA-256 over a label, the
// topic's length and name, and the payload.
func parleyMessageID(m *pb.Message) string {
	h := sha256.New()
	h.Write([]byte("parley p2p message id v1"))
	var l [8]byte
	binenc.BigEndian.PutUint64(l[:], uint64(len(m.GetTopic())))
	h.Write(l[:])
	h.Write([]byte(m.GetTopic()))
	h.Write(m.GetData())
	return string(h.Sum(nil))
}

// subscriptionLog is a gossipsub subscription filter that lets everything
// through and records the topics each peer announces.
type subscriptionLog struct {
	mu     sync.Mutex
	topics map[libp2ppeer.ID][]string
}

func (l *subscriptionLog) CanSubscribe(string) bool { return true }

func (l *subscriptionLog) FilterIncomingSubscriptions(from libp2ppeer.ID, subs []*pb.RPC_SubOpts) ([]*pb.RPC_SubOpts, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range subs {
		if s.GetSubscribe() && !slices.Contains(l.topics[from], s.GetTopicid()) {
			l.topics[from] = append(l.topics[from], s.GetTopicid())
		}
	}
	return subs, nil
}

// of returns the topics p announced whose names start with prefix.
func (l *subscriptionLog) of(p libp2ppeer.ID, prefix string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.topics[p] {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}
