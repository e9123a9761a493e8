package ordering

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"sort"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
)

// maybeHead publishes a head when the member's epoch changed (at most
// every HeadInterval) or the keepalive is due. The committer of a new
// epoch votes for it sooner, at most every HeadInterval/8: its vote is
// one of those the epoch's finality, and so the Welcome of a member it
// added, waits for, and in a small group the one that decides. The other
// members' heads keep to HeadInterval: coming at once after a commit,
// their digests of the last epoch's log would call for what gossip is
// still carrying.
func (l *Loop) maybeHead() {
	if l.removed || l.epochs[l.tip.ID].state == nil {
		return
	}
	since := l.now.Sub(l.lastHead)
	own := l.tip.Committer == l.self && l.tip.Number > l.headEpoch && since >= l.cfg.HeadInterval/8
	if (l.headDirty && (since >= l.cfg.HeadInterval || own)) || since >= l.cfg.HeadKeepalive || l.lastHead.IsZero() {
		l.publishHead()
	}
}

func (l *Loop) publishHead() { l.publishHeadFor(l.tip) }

// publishHeadFor publishes a head for epoch tip, which this member holds
// the state of: its tip, or the last epoch it was a member of on the
// canonical chain (see reconsider).
func (l *Loop) publishHeadFor(tip *Node) {
	s := l.epochs[tip.ID].state
	// The counter follows the clock so that it keeps increasing across a
	// restart without being persisted on every head.
	l.headSeq = max(l.headSeq+1, uint64(l.now.UnixMilli()))
	h := &Head{
		GroupID:      l.groupID,
		Epoch:        tip.Number,
		Tip:          tip.ID,
		Leaf:         uint32(s.OwnLeaf()),
		Seq:          l.headSeq,
		SignatureKey: s.Signer().PublicKey(),
	}
	h.Logs = l.headLogsFrom(tip)
	h.Span = l.spanDigestAt(tip, l.spanStartAt(tip))
	sig, err := s.Suite().SignWithLabel(s.Signer(), headLabel, h.tbs(), l.cfg.Rand)
	if err != nil {
		return
	}
	h.Signature = sig
	env := &Envelope{Kind: KindHead, Epoch: tip.ID, Payload: codec.MustMarshal(h)}
	l.out.Publish = append(l.out.Publish, env.Encode())
	l.seen[MessageHash(env.Payload)] = struct{}{}
	l.stats.Heads++
	l.lastHead, l.headDirty, l.headEpoch = l.now, false, tip.Number
	l.graph.Vote(l.self, Vote{Seq: l.headSeq, Tip: tip.ID})
	l.voteEpoch[l.self] = tip.Number
}

// head handles a member's head: a vote for the fork choice, and a sign
// that this member is behind if the tip is unknown.
func (l *Loop) head(from string, env *Envelope) {
	var h Head
	if err := codec.Unmarshal(env.Payload, &h); err != nil {
		l.reject(from, fmt.Errorf("%w: %w", ErrBadHead, err))
		return
	}
	if !bytes.Equal(h.GroupID, l.groupID) || h.Tip != env.Epoch {
		l.reject(from, fmt.Errorf("%w: wrong group or epoch", ErrBadHead))
		return
	}
	if bytes.Equal(h.SignatureKey, l.ownSignatureKey()) {
		return
	}
	// Find the signer: its leaf in the tip epoch if known, otherwise the
	// member with that signature key in this member's canonical epoch.
	var identity string
	if info := l.epochs[h.Tip]; info != nil && info.state != nil {
		leaf := info.state.Tree().Leaf(group.LeafIndex(h.Leaf))
		if leaf == nil || !bytes.Equal(leaf.SignatureKey, h.SignatureKey) {
			l.reject(from, fmt.Errorf("%w: signer is not at leaf %d", ErrBadHead, h.Leaf))
			return
		}
		identity = Identity(leaf)
	} else {
		st := l.canonicalState()
		if st == nil {
			return
		}
		if li, ok := st.Tree().FindSignatureKey(h.SignatureKey); ok {
			identity = Identity(st.Tree().Leaf(li))
		} else if identity = l.placedSigner(h.SignatureKey); identity == "" {
			// A member this member does not know yet: the head still
			// tells it that it may be behind, or that there is a branch
			// it has not seen.
			if l.mayBeAhead(&h) {
				l.askSync(from)
			}
			return
		}
	}
	if old, ok := l.graph.votes[identity]; ok && old.Seq >= h.Seq {
		return // not newer than the head held: nothing to verify
	}
	cs := l.suite()
	if err := l.cfg.Verified.VerifyWithLabel(cs, h.SignatureKey, headLabel, h.tbs(), h.Signature); err != nil {
		l.reject(from, fmt.Errorf("%w: %w", ErrBadHead, err))
		return
	}
	if identity == l.self {
		return
	}
	if l.graph.Vote(identity, Vote{Seq: h.Seq, Tip: h.Tip}) {
		l.noteMoved(identity, h.Tip)
		l.noteHead(identity, &h)
		l.voteEpoch[identity] = h.Epoch
		l.voteSeen[identity] = l.now
		if _, ok := l.heardSince[identity]; !ok {
			if l.heardSince == nil {
				l.heardSince = map[string]int64{}
			}
			l.heardSince[identity] = l.now.UnixNano()
		}
		l.heads[identity] = env.Encode()
		l.reconsider()
	}
	// A member on another branch of a fork this member has known for a
	// while: they count different votes. Trade heads.
	if info := l.epochs[h.Tip]; info != nil && !l.onCanonical(h.Tip) && l.now.Sub(info.seenAt) >= l.cfg.SyncTimeout {
		l.askVotes(from)
	}
	if h.Tip == l.tip.ID && l.ownProposalWaits() && l.now.Sub(l.prompted[from]) >= l.cfg.SyncTimeout && len(l.requests) == 0 {
		// A proposal is in no head's digest: a peer that was away when
		// this member's leave went out does not learn from heads that
		// it lacks it, and if no one that holds it can commit it (in a
		// group of two) the leave never comes. Asked, the peer
		// finds the proposal among what this member lists as held, and
		// asks back for it. At most once per SyncTimeout per peer, and
		// apart from the asks for what this member lacks (see
		// askSyncFor), which it must not delay.
		if l.askSyncFor(from, syncAsk{prompt: true}) {
			if l.prompted == nil {
				l.prompted = map[string]time.Time{}
			}
			l.prompted[from] = l.now
		}
	}
	if h.Epoch < l.tip.Number && l.graph.Get(h.Tip) != nil && l.onCanonical(h.Tip) {
		// The member is behind on this chain (it may have subscribed
		// after the commits went out): a head from this member tells
		// it so.
		l.headDirty = true
	}
	// An unknown tip is news: a later epoch, or a branch this member has
	// not seen, whatever its number (after a long partition the heavier
	// side may have made fewer commits); the votes on it count only once
	// its epochs are here. Tips below the root were pruned here.
	if l.graph.Get(h.Tip) == nil && h.Epoch >= l.graph.Root().Number {
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeBehind, From: from, Epoch: h.Epoch})
	}
	l.deferAsk(from, &h)
}

// placedSigner returns the member with signature key key in a held epoch
// whose vote is placed (see Graph.Place): one that refused this member
// as removed on a branch it cannot read, and is no member of its
// canonical epoch. Its newer heads, for epochs not here, must keep
// counting where it was placed; dropped, its older vote counted where
// it was, and two members holding each other removed counted different
// votes and kept their own branches.
func (l *Loop) placedSigner(key []byte) string {
	for _, info := range l.epochs {
		if info.state == nil {
			continue
		}
		if li, ok := info.state.Tree().FindSignatureKey(key); ok {
			id := Identity(info.state.Tree().Leaf(li))
			if _, placed := l.graph.placed[id]; placed {
				return id
			}
			return ""
		}
	}
	return ""
}

// deferredAsk is a catch-up request a head called for, waiting out
// Config.GossipGrace.
type deferredAsk struct {
	since time.Time
	head  *Head
}

// deferAsk notes that the head from peer shows this member lacks
// something (an epoch it does not hold, or messages of an epoch both
// hold), and asks peer once that is still so Config.GossipGrace after it
// first was; askDeferred asks for the others on each tick.
func (l *Loop) deferAsk(from string, h *Head) {
	if !l.headNeedsSync(h) {
		delete(l.deferred, from)
		return
	}
	d, ok := l.deferred[from]
	if !ok {
		d = &deferredAsk{since: l.now}
		if l.deferred == nil {
			l.deferred = map[string]*deferredAsk{}
		}
		l.deferred[from] = d
	}
	d.head = h
	if l.now.Sub(d.since) >= l.cfg.GossipGrace {
		l.askFor(from, h)
	}
}

// askDeferred asks for what heads showed missing Config.GossipGrace ago
// and is missing still, in the order of the peers' identities.
func (l *Loop) askDeferred() {
	if len(l.deferred) == 0 {
		return
	}
	peers := make([]string, 0, len(l.deferred))
	for p := range l.deferred {
		peers = append(peers, p)
	}
	sort.Strings(peers)
	for _, p := range peers {
		d := l.deferred[p]
		switch {
		case !l.headNeedsSync(d.head):
			delete(l.deferred, p)
		case l.now.Sub(d.since) >= l.cfg.GossipGrace:
			l.askFor(p, d.head)
		}
	}
}

// headNeedsSync reports whether head h shows that this member lacks an
// epoch or messages.
func (l *Loop) headNeedsSync(h *Head) bool {
	if l.graph.Get(h.Tip) == nil {
		return l.mayBeAhead(h)
	}
	return len(l.logsToAsk(h)) > 0
}

// mayBeAhead reports whether head h, for an epoch not in the graph, may
// name one this member lacks: any at or above its root (tips below it
// were pruned here), and, for a member that holds itself removed and was
// added again on a branch it cannot see (readded), any at all: after a
// long partition the winning branch may have made fewer commits than the
// one this member joined on, and only its members can take it back.
func (l *Loop) mayBeAhead(h *Head) bool {
	return h.Epoch >= l.graph.Root().Number || (l.removed && l.readded)
}

// askFor asks peer for what its head h shows this member lacks; once
// asked (or refused by the request limits), the wait starts again.
//
// Logs that differ are asked for once per view: an answer that brought
// nothing (the peer lacks what this member holds, or holds only what this
// member refuses) comes again the same while neither side's digests nor
// this member's tip change, so it is not asked for again until one does.
func (l *Loop) askFor(peer string, h *Head) {
	var asked bool
	if l.graph.Get(h.Tip) == nil {
		// One request at a time for an unknown tip, whichever: two
		// peers on it would answer with the same commits and logs, and
		// so would two on different tips of one branch (after a heal,
		// each member's head names its own). The next is asked for once
		// the answer came, or the request timed out.
		for _, r := range l.requests {
			if r.ask.tip != (EpochID{}) {
				return
			}
		}
		asked = l.askSyncFor(peer, syncAsk{tip: h.Tip})
	} else {
		logs := l.logsToAsk(h)
		if l.askingLogs(logs) {
			return // asked another peer: it likely brings the same
		}
		view := l.logsView(h, logs)
		if l.fruitless[peer] == view {
			delete(l.deferred, peer)
			return
		}
		asked = l.askSyncFor(peer, syncAsk{logs: logs, view: view, along: h.Tip})
	}
	if asked {
		delete(l.deferred, peer)
	}
}

// askingLogs reports whether an outstanding request asks for the log of
// one of the epochs of logs.
func (l *Loop) askingLogs(logs []LogDigest) bool {
	for _, r := range l.requests {
		for _, d := range r.ask.logs {
			if slices.ContainsFunc(logs, func(x LogDigest) bool { return x.Epoch == d.Epoch }) {
				return true
			}
		}
	}
	return false
}

// logsView summarizes what a request for the logs that differ from head
// h's depends on: this member's tip, its digests of those epochs (mine)
// and the head's.
func (l *Loop) logsView(h *Head, mine []LogDigest) [32]byte {
	theirs := map[uint64]LogDigest{}
	for _, d := range h.Logs {
		theirs[d.Epoch] = d
	}
	b := sha256.New()
	b.Write(l.tip.ID[:])
	putDigest(b, h.Span)
	for _, d := range mine {
		putDigest(b, d)
		putDigest(b, theirs[d.Epoch])
	}
	return [32]byte(b.Sum(nil))
}

// putDigest writes a LogDigest to a view's hash (whose Write never fails).
func putDigest(w hash.Hash, d LogDigest) {
	var buf [20]byte
	binary.BigEndian.PutUint64(buf[:8], d.Epoch)
	binary.BigEndian.PutUint32(buf[8:12], d.Count)
	copy(buf[12:], d.Digest[:])
	w.Write(buf[:])
}

// logDigests is how many recent epochs a head summarizes one by one.
const logDigests = 16

// headLogs returns the digests a head lists one by one: those of the
// newest logDigests canonical epochs with messages, newest first.
func (l *Loop) headLogs() []LogDigest { return l.headLogsFrom(l.tip) }

// headLogsFrom is headLogs for a head of epoch tip.
func (l *Loop) headLogsFrom(tip *Node) []LogDigest {
	var logs []LogDigest
	for n := tip; n != nil && len(logs) < logDigests; n = n.parent {
		if info := l.epochs[n.ID]; info != nil {
			if d := info.digest(n.Number); d.Count > 0 {
				logs = append(logs, d)
			}
		}
	}
	return logs
}

// spanStart is the oldest canonical epoch whose messages this member can
// vouch for: the oldest one it holds, within Retention of the tip.
func (l *Loop) spanStart() uint64 { return l.spanStartAt(l.tip) }

// spanStartAt is spanStart for a head of epoch tip.
func (l *Loop) spanStartAt(tip *Node) uint64 {
	from := tip.Number
	for n := tip; n != nil && int(tip.Number-n.Number) < l.cfg.Retention; n = n.parent {
		if info := l.epochs[n.ID]; info == nil || info.state == nil {
			break
		}
		from = n.Number
	}
	return from
}

// spanDigest combines the message digests of the canonical epochs from
// epoch from up to the tip.
func (l *Loop) spanDigest(from uint64) LogDigest { return l.spanDigestAt(l.tip, from) }

// spanDigestAt is spanDigest for a head of epoch tip.
func (l *Loop) spanDigestAt(tip *Node, from uint64) LogDigest {
	d := LogDigest{Epoch: from}
	for n := tip; n != nil && n.Number >= from; n = n.parent {
		info := l.epochs[n.ID]
		if info == nil {
			continue
		}
		e := info.digest(n.Number)
		d.Count += e.Count
		xor8(&d.Digest, e.Digest)
	}
	return d
}

// logsToAsk returns this member's digests of the epochs where the
// application messages of head h's sender differ from its own, on the
// epochs both share: the logs to ask it for.
func (l *Loop) logsToAsk(h *Head) []LogDigest {
	theirs := map[uint64]LogDigest{}
	for _, d := range h.Logs {
		theirs[d.Epoch] = d
	}
	var want []LogDigest
	// On the same tip, compare everything both hold: send this member's
	// digests of the span, and the peer answers with the logs that differ.
	// Only the part of the span that neither head lists one by one (the
	// deep epochs) is compared so: the epochs the peer's head lists are
	// compared below, one by one, and those this member's lists, by the
	// peer.
	if h.Tip == l.tip.ID && l.spanStart() <= h.Span.Epoch && l.spanDigest(h.Span.Epoch) != h.Span {
		theirsDeep, mine := h.Span, l.spanDigest(h.Span.Epoch)
		listed := map[uint64]bool{}
		for _, d := range l.headLogs() {
			listed[d.Epoch] = true // the peer compares these one by one
		}
		for n := l.tip; n != nil && n.Number >= h.Span.Epoch; n = n.parent {
			d, ok := theirs[n.Number]
			info := l.epochs[n.ID]
			if (!ok && !listed[n.Number]) || info == nil {
				continue
			}
			e := info.digest(n.Number)
			theirsDeep.Count -= d.Count
			mine.Count -= e.Count
			xor8(&theirsDeep.Digest, d.Digest)
			xor8(&mine.Digest, e.Digest)
		}
		// A peer whose span starts later cannot compare this member's
		// span with its own: this member asks when they differ (and the
		// peer, seeing deep epochs differ, asks back; see askBack).
		// Otherwise the one that holds fewer asks (see behind).
		if mine != theirsDeep && (h.Span.Epoch > l.spanStart() || behind(theirsDeep, mine.Count, mine.Digest)) {
			for n := l.tip; n != nil && n.Number >= h.Span.Epoch && len(want) < 4*logDigests; n = n.parent {
				info := l.epochs[n.ID]
				want = append(want, info.digest(n.Number))
			}
			return want
		}
	}
	// Otherwise compare the epochs the head summarizes that both chains
	// share (after a long fork they may lie deeper than logDigests below
	// this member's tip).
	for n := l.tip; n != nil && len(theirs) > 0 && len(want) < 4*logDigests; n = n.parent {
		d, ok := theirs[n.Number]
		if !ok {
			continue // no messages there on their side: they will ask us
		}
		delete(theirs, n.Number)
		if !l.graph.IsAncestor(n.ID, h.Tip) {
			continue
		}
		info := l.epochs[n.ID]
		switch {
		case info == nil:
			want = append(want, LogDigest{Epoch: n.Number})
		case info.state == nil:
			// Held without its state (see inbound): its messages could
			// not be read here.
		default:
			if mine := info.digest(n.Number); behind(d, mine.Count, mine.Digest) {
				want = append(want, mine)
			}
		}
	}
	return want
}

// behind reports whether a peer's digest d of an epoch (or span) shows
// that this member, holding count messages with digest mine there, may
// lack some: the peer holds more, or as many but not the same. A peer
// that holds fewer is left to ask this member (its head shows it more);
// once it has them, it holds at least as many as this member, and if it
// holds more this member asks it. So the two still end with the union,
// and the one that only lacks is not asked for nothing.
func behind(d LogDigest, count uint32, mine [8]byte) bool {
	return d.Count > count || (d.Count == count && d.Digest != mine)
}

// canonicalState returns the newest state on the canonical chain that this
// member holds (the tip's, unless the tip is opaque).
func (l *Loop) canonicalState() *group.State {
	for n := l.tip; n != nil; n = n.parent {
		if info := l.epochs[n.ID]; info != nil && info.state != nil {
			return info.state
		}
	}
	return nil
}

// ownSignatureKey returns this member's signature key.
func (l *Loop) ownSignatureKey() []byte {
	if st := l.canonicalState(); st != nil {
		return st.Signer().PublicKey()
	}
	return nil
}

// suite returns the group's cipher suite.
func (l *Loop) suite() suite.CipherSuite { return l.canonicalState().Suite() }
