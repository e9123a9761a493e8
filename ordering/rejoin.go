package ordering

import (
	"bytes"
	"fmt"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

// rejoinPatience is how many SyncTimeouts a member waits for catch-up
// from a member with older history before it rejoins from a newer
// member's GroupInfo: such members may be away for a while (a partition),
// and a rejoin loses the messages in between.
const rejoinPatience = 10

// carryIntents readies the intents for a history that starts over at
// epoch number from: those done on the old canonical chain are dropped
// (what happened there cannot be checked any more), the others count from
// the new start.
func (l *Loop) carryIntents(from uint64) {
	// Adds and removals are the exception: one done only on the old chain
	// would be lost with it. A removal is redone if the member is in the
	// new history (one absent from its first epoch counts as removed, see
	// doneAt); an add, if the new history's tree lacks the KeyPackage's
	// leaf. The new history cannot show what happened before its first
	// epoch: a member added there from this member's proposal and removed
	// since would be added again. Its KeyPackage's init key is spent by
	// then (it joined with it), so it cannot read that Welcome and holds
	// a leaf it cannot use until someone removes it again; losing the
	// invitation silently is the worse failure.
	before := l.intents
	l.settleIntents(l.tip)
	kept := map[*intent]bool{}
	for _, in := range l.intents {
		kept[in] = true
	}
	var carried []*intent
	for _, in := range before {
		if kept[in] || in.kind == intentRemove || in.kind == intentAdd {
			carried = append(carried, in)
		}
	}
	l.intents = carried
	for _, in := range l.intents {
		in.since = from
		in.proposedIn, in.tried = EpochID{}, EpochID{}
	}
	l.changes.touch()
}

// startOver begins a new history at info's epoch, after a rejoin or from
// a spare Welcome: the intents are carried over (carryIntents) and every
// epoch and vote of the old history is dropped.
func (l *Loop) startOver(info *epochInfo) {
	root := info.node
	l.carryIntents(root.Number)
	for id := range l.epochs {
		l.dropEpoch(id)
	}
	l.graph = NewGraph(root)
	l.voteEpoch = map[string]uint64{}
	l.voteSeen = map[string]time.Time{}
	l.heads = map[string][]byte{}
	l.epochs[root.ID] = info
	l.out.NewEpochs = append(l.out.NewEpochs, EpochInfo{ID: root.ID, Number: root.Number, Members: root.Members})
	l.tip = root
}

// pendingRejoin is a GroupInfo from a member whose history starts after
// this member's epochs, kept while others are asked.
type pendingRejoin struct {
	from string
	resp *syncResponse
	at   time.Time
	tip  EpochID
}

// maybeRejoin rejoins from a kept GroupInfo once nobody helped for a
// SyncTimeout.
func (l *Loop) maybeRejoin() {
	p := l.pendingRejoin
	if p == nil {
		return
	}
	if l.tip.ID != p.tip || l.removed {
		l.pendingRejoin = nil
		return
	}
	if l.now.Sub(p.at) < rejoinPatience*l.cfg.SyncTimeout {
		return
	}
	l.pendingRejoin = nil
	if l.historyAlive() {
		return
	}
	if l.restartFromSpareWelcome() {
		return
	}
	l.rejoin(p.from, p.resp)
}

// restartFromSpareWelcome restarts a joiner whose branch lost from another
// Welcome it got for the group (an add re-issued on the winning branch),
// so that it misses nothing. It reports whether it did.
func (l *Loop) restartFromSpareWelcome() bool {
	if l.bundle == nil || l.bundle.InitKey == nil {
		return false
	}
	var best *group.State
	for _, w := range l.spare {
		var m wire.MLSMessage
		if codec.Unmarshal(w, &m) != nil || m.Welcome == nil {
			continue
		}
		s, err := group.JoinWelcome(l.cfg.MLS, m.Welcome, l.bundle, group.JoinOptions{})
		if err != nil || l.epochs[EpochIDOf(s)] != nil {
			continue
		}
		if best == nil || s.Epoch() > best.Epoch() {
			best = s
		}
	}
	l.spare = nil
	if best == nil {
		return false
	}
	root := &Node{ID: EpochIDOf(best), Number: best.Epoch(), Members: identities(best)}
	l.startOver(&epochInfo{node: root, state: best, seenAt: l.now, member: true, dirty: true})
	l.headDirty = true
	l.removed, l.readded = false, false
	for _, o := range l.outboxInOrder() {
		l.stats.Resent++
		l.transmit(o)
	}
	l.changes.touch()
	return true
}

// rejoin rejoins the group by external commit from a GroupInfo, replacing
// this member's old leaf, and reports the epochs it missed.
func (l *Loop) rejoin(from string, resp *syncResponse) {
	var m wire.MLSMessage
	if err := codec.Unmarshal(resp.groupInfo, &m); err != nil || m.GroupInfo == nil {
		l.reject(from, fmt.Errorf("%w: group info", ErrMalformedRequest))
		return
	}
	gi := m.GroupInfo
	// The responder holds none of this member's epochs on its canonical
	// chain; a GroupInfo far older than this member's tip is stale.
	if !bytes.Equal(gi.GroupContext.GroupID, l.groupID) || gi.GroupContext.Epoch+uint64(l.cfg.Retention) < l.tip.Number {
		return
	}
	if l.epochs[resp.tip] != nil {
		return // already there
	}
	old := l.canonicalState()
	if old == nil {
		return
	}
	opts := group.ExternalJoinOptions{Credential: old.Tree().Leaf(old.OwnLeaf()).Credential}
	if data, ok := gi.Extensions.Find(wire.ExtensionRatchetTree); ok {
		var rt wire.RatchetTree
		if codec.Unmarshal(data, &rt) == nil {
			for i := 0; i < len(rt); i += 2 {
				if rt[i] != nil && rt[i].Leaf != nil && bytes.Equal(rt[i].Leaf.SignatureKey, old.Signer().PublicKey()) {
					leaf := group.LeafIndex(i / 2)
					opts.Resync = &leaf
				}
			}
		}
	}
	sc, err := group.JoinExternal(l.cfg.MLS, gi, old.Signer(), opts)
	if err != nil {
		l.reject(from, fmt.Errorf("ordering: rejoining: %w", err))
		return
	}
	// None of this member's epochs is on the canonical chain, so it can
	// have missed messages from its oldest held epoch up to the
	// GroupInfo's, and from further back if the winning branch added it
	// earlier than the branch it joined on did (an add re-issued there,
	// whose Welcome it did not get): the responder says since when.
	missedFrom, missedTo := min(l.graph.Root().Number, resp.memberSince, gi.GroupContext.Epoch), gi.GroupContext.Epoch
	// Start a new history at the GroupInfo's epoch.
	root := &Node{ID: resp.tip, Number: gi.GroupContext.Epoch, Members: identities(sc.State)}
	l.startOver(&epochInfo{node: root, seenAt: l.now, missedFrom: missedFrom})
	env := (&Envelope{Kind: KindHandshake, Epoch: resp.tip, Payload: sc.Message}).Encode()
	l.seen[MessageHash(sc.Message)] = struct{}{}
	l.out.Publish = append(l.out.Publish, env)
	l.stats.Rejoin++
	l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejoined, MissedFrom: missedFrom, MissedTo: missedTo, Epoch: sc.State.Epoch()})
	l.addEpoch(l.epochs[root.ID], sc, env, wire.Sender{Type: wire.SenderNewMemberCommit})
	l.removed, l.readded = false, false
	old.Destroy()
	if l.bundle != nil {
		// The external commit gave this member a new leaf: a Welcome for
		// the KeyPackage it first joined with can only lead back into a
		// history it has left.
		l.bundle.DestroyInitKey()
		l.bundle, l.spare = nil, nil
	}
	l.reconsider()
	for _, o := range l.outboxInOrder() {
		if !l.onCanonical(o.epoch) {
			l.stats.Resent++
			l.transmit(o)
		}
	}
	l.changes.touch()
}
