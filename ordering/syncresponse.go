package ordering

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
)

// syncResponse handles the answer to a catch-up request.
func (l *Loop) syncResponse(id uint64, body []byte, err error) {
	r := l.requests[id]
	delete(l.requests, id)
	if r != nil && err != nil {
		l.noteUnanswered(r.to)
	}
	if r == nil || err != nil {
		return
	}
	delete(l.unanswered, r.to)
	resp, derr := decodeSyncResponse(body)
	if derr != nil {
		l.reject(r.to, derr)
		return
	}
	l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeSynced, From: r.to, Count: len(resp.envelopes), Epoch: uint64(resp.status)})
	switch resp.status {
	case syncOK:
		l.wantLog = false
		if !r.ask.joinLog && !r.ask.prompt {
			l.stats.Sync.OKAnswers++
		}
		took := 0
		var newIn []EpochID // the epochs this answer brought something new of
		l.viaSync = true
		for _, e := range resp.envelopes {
			env, err := DecodeEnvelope(e)
			if err != nil {
				l.inbound(r.to, e)
				continue
			}
			h := MessageHash(env.Payload)
			_, before := l.seen[h]
			nb := len(l.buffered)
			l.inbound(r.to, e)
			if _, after := l.seen[h]; after && !before {
				l.stats.SyncNewBytes += len(e)
				l.stats.Sync.NewBytes += len(e)
				if !slices.Contains(newIn, env.Epoch) {
					newIn = append(newIn, env.Epoch)
				}
				took++
			} else if len(l.buffered) > nb {
				took++
			}
		}
		l.viaSync = false
		l.stats.Sync.NewEpochs += len(newIn)
		left := l.noteLeftOut(r, resp.leftOut)
		// A page that brought nothing this member could take in (what
		// it refuses, or cannot place) would come again the same: the
		// next one waits for the usual triggers.
		// A sketch of held envelopes that did not peel left out a log:
		// asked again at once with a larger one.
		if resp.relist {
			l.sketchesFailed(r.sketched)
			l.stats.Sync.Relists++
			resp.more = true
		} else if took == 0 {
			resp.more = false
			switch {
			case left:
			case r.ask.joinLog:
				l.stats.Sync.JoinEmpty++
			case r.ask.prompt:
				l.stats.Sync.PromptEmpty++
			default:
				l.stats.Sync.Empty++
			}
			// An answer that left out what gossip is bringing is not
			// fruitless: what it left out is asked for again if it does
			// not come (askLeftOut).
			if r.ask.view != ([32]byte{}) && !left {
				if l.fruitless == nil || len(l.fruitless) >= maxFruitless {
					l.fruitless = map[string][32]byte{}
				}
				l.fruitless[r.to] = r.ask.view
			}
		} else {
			delete(l.fruitless, r.to)
		}
		if resp.more && (l.pagingFrom == "" || l.pagingFrom == r.to || l.now.Sub(l.pagingAt) > l.cfg.SyncTimeout) {
			// The next page, at once, from this peer only (two members
			// paging the same backlog to it would send it twice): the
			// request lists what arrived.
			l.pagingFrom, l.pagingAt = r.to, l.now
			delete(l.behindAsk, r.to)
			ask := r.ask
			ask.logs, ask.page = l.currentDigests(ask.logs), true
			l.askSyncFor(r.to, ask)
		} else if !resp.more && l.pagingFrom == r.to {
			l.pagingFrom = ""
		}
		// Relayed heads go to head() directly: one seen before, when it
		// could not be counted, counts now (head() drops the old ones).
		for _, h := range resp.heads {
			if env, err := DecodeEnvelope(h); err == nil && env.Kind == KindHead {
				l.head(r.to, env)
			}
		}
	case syncRejoin:
		if l.restartFromSpareWelcome() {
			return
		}
		l.rejoin(r.to, resp)
	case syncUnknown:
		// A member that holds itself removed asks one peer per
		// SyncTimeout: one that knows none of its epochs waits, as one
		// that refused it does, for the rare re-check (removedRecheck),
		// or the same peers first in line took every turn (the long
		// partition's seed 186, with answers that leave out what gossip
		// brings: m6, removed on a branch that lost, asked the two that
		// had rejoined, every 3 s to the end).
		if l.removed {
			l.noteRefused(r.to, EpochID{})
		}
		l.widenSync()
	case syncStale:
		// Nothing was served: the two clocks differ by more than
		// syncFreshness. Not a refusal; the user is told.
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, From: r.to, Err: fmt.Errorf("%w: the clocks of this member and %s differ by more than %v", ErrStaleRequest, r.to, syncFreshness)})
	case syncOlder:
		// Catch-up from a member with older history is better than a
		// rejoin: ask around, and rejoin if the tip does not move.
		if l.pendingRejoin == nil {
			l.pendingRejoin = &pendingRejoin{from: r.to, resp: resp, at: l.now, tip: l.tip.ID}
		}
		l.widenSync()
	case syncRefused, syncGone:
		l.noteRefused(r.to, l.graph.votes[r.to].Tip)
		if resp.status == syncRefused && !resp.tip.IsZero() && l.graph.Get(resp.tip) != nil {
			l.refusedAsRemoved(r.to, resp)
			return
		}
		l.countRefusal(r.to, resp.status == syncGone)
		l.widenSync()
	}
}

// countRefusal counts a member that refused this one as a non-member
// (refused) or is no longer a member itself (gone). When most of the other
// members of this member's epoch are one or the other, and at least one
// live member refused it, its branch has no majority and it is not in the
// branch the refusers follow: it was removed on a branch it cannot see.
// A member alone in its epoch has no one to vouch for its branch: a live
// member's refusal is enough. (That happens when every member of the fork
// point that followed the other branch has since been removed there, so
// that only members added after the fork are left to answer.)
func (l *Loop) countRefusal(from string, gone bool) {
	if l.refusedAt != l.tip.ID {
		l.refusedAt, l.refusedBy, l.goneBy = l.tip.ID, map[string]bool{}, map[string]bool{}
	}
	if gone {
		l.goneBy[from] = true
	} else {
		l.refusedBy[from] = true
	}
	if l.removed || len(l.refusedBy) == 0 {
		return
	}
	out, others := 0, 0
	for _, m := range l.tip.Members {
		if m == l.self {
			continue
		}
		others++
		if l.refusedBy[m] || l.goneBy[m] {
			out++
		}
	}
	if others == 0 || 2*out > others {
		if l.restartFromSpareWelcome() {
			return
		}
		l.removed = true
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRemoved, Epoch: l.tip.Number})
		l.changes.touch()
	}
}

// refusedAsRemoved handles a refusal that says this member was removed on
// the responder's branch after epoch resp.tip: the commit it carries makes
// an opaque node there, and the responder's vote counts under it, so the
// fork choice (not the word of one peer) decides whether this member is
// out.
func (l *Loop) refusedAsRemoved(from string, resp *syncResponse) {
	for _, e := range resp.envelopes {
		l.inbound(from, e)
	}
	fork := l.graph.Get(resp.tip)
	if fork == nil {
		l.countRefusal(from, false)
		return
	}
	for _, c := range fork.Children() {
		info := l.epochs[c.ID]
		if info == nil || !info.opaque {
			continue
		}
		for _, e := range resp.envelopes {
			if bytes.Equal(e, info.commit) {
				l.graph.Place(from, c.ID)
				for _, h := range resp.heads {
					l.placeRelayedHead(fork, c, h)
				}
				l.reconsider()
				return
			}
		}
	}
	// A bare refusal naming the fork point, where this member holds one
	// opaque child: the responder told it so because it holds that
	// removing commit (see removedResponse). Its vote counts there, as
	// with the commit.
	if len(resp.envelopes) == 0 {
		var only *Node
		for _, c := range fork.Children() {
			if info := l.epochs[c.ID]; info != nil && info.opaque {
				if only != nil {
					only = nil
					break
				}
				only = c
			}
		}
		if only != nil {
			l.graph.Place(from, only.ID)
			l.reconsider()
			if l.removed {
				return
			}
		}
	}
	// The removing commit did not become an opaque child of the fork
	// point here (seen before, or refused): the refusal still counts, as
	// one without a commit does. Returning without counting it left a
	// member removed on the branch that won asking for ever.
	l.countRefusal(from, false)
}

// placeRelayedHead counts a head relayed with a removal refusal: signed by
// a member of the fork point (checked against the fork point's tree), for
// an epoch this member does not hold, which the responder says lies under
// the removing child c. Its vote is placed there, as the responder's own
// is. A responder can leave heads out, but cannot forge one.
func (l *Loop) placeRelayedHead(fork, c *Node, data []byte) {
	env, err := DecodeEnvelope(data)
	if err != nil || env.Kind != KindHead {
		return
	}
	var h Head
	if codec.Unmarshal(env.Payload, &h) != nil || !bytes.Equal(h.GroupID, l.groupID) || h.Tip != env.Epoch || l.graph.Get(h.Tip) != nil {
		return
	}
	st := l.epochs[fork.ID].state
	if st == nil {
		return
	}
	li, ok := st.Tree().FindSignatureKey(h.SignatureKey)
	if !ok {
		return
	}
	identity := Identity(st.Tree().Leaf(li))
	if identity == l.self || !fork.hasMember(identity) {
		return
	}
	if old, ok := l.graph.votes[identity]; ok && old.Seq >= h.Seq {
		return
	}
	if l.cfg.Verified.VerifyWithLabel(st.Suite(), h.SignatureKey, headLabel, h.tbs(), h.Signature) != nil {
		l.reject("", fmt.Errorf("%w: relayed head", ErrBadHead))
		return
	}
	l.graph.Vote(identity, Vote{Seq: h.Seq, Tip: h.Tip})
	l.graph.Place(identity, c.ID)
	l.voteEpoch[identity] = h.Epoch
	l.heads[identity] = data
	// Its signed head says where it stands as surely as its refusal
	// would: a member that holds itself removed does not ask it either,
	// but for the re-check (removedRecheck). Asked, it would give the
	// bare refusal, its vote counted here already.
	l.noteRefused(identity, h.Tip)
}

// refusal is a peer's last refusal of this member's request (see
// removedRecheck).
type refusal struct {
	at time.Time
	// tip is the tip of the peer's vote when it refused (its head held
	// then), zero when the refusal did not depend on its tip alone;
	// moved, that a head of the peer has named another tip since.
	tip   EpochID
	moved bool
}

// noteRefused records that peer refused this member's request, its vote
// then for tip, or that a head relayed with a refusal counts it on the
// removing branch, as a refusal would (see removedRecheck).
func (l *Loop) noteRefused(peer string, tip EpochID) {
	if l.refusedFrom == nil || len(l.refusedFrom) >= maxToldRemoved {
		l.refusedFrom = map[string]*refusal{}
	}
	l.refusedFrom[peer] = &refusal{at: l.now, tip: tip, moved: tip.IsZero()}
}

// noteMoved records that peer's head names tip: if that is not the tip
// it refused this member at, the refusal may not come again.
func (l *Loop) noteMoved(peer string, tip EpochID) {
	if r := l.refusedFrom[peer]; r != nil && r.tip != tip {
		r.moved = true
	}
}

// leftOutWait is what a peer's answers left out because gossip was
// bringing it (syncResponse.leftOut): asked for again, with the request
// that got those answers, if it has not come GossipGrace after.
type leftOutWait struct {
	ids map[EpochID][][8]byte
	at  time.Time // when the last answer that left something out came
	ask syncAsk
}

// maxLeftOutPeers bounds the peers whose left-out envelopes a member
// waits for; past it, it forgets them all (and heads call for what it
// still lacks).
const maxLeftOutPeers = 256

// noteLeftOut records what the answer to request r left out, and reports
// whether it left out anything.
func (l *Loop) noteLeftOut(r *outstanding, left []heldLog) bool {
	if len(left) == 0 {
		return false
	}
	w := l.leftOut[r.to]
	if w == nil {
		if l.leftOut == nil || len(l.leftOut) >= maxLeftOutPeers {
			l.leftOut = map[string]*leftOutWait{}
		}
		w = &leftOutWait{ids: map[EpochID][][8]byte{}}
		l.leftOut[r.to] = w
	}
	w.at, w.ask = l.now, r.ask
	w.ask.page = false
	for _, h := range left {
		if len(w.ids[h.epoch]) < maxLeftOut {
			w.ids[h.epoch] = append(w.ids[h.epoch], h.ids[:min(len(h.ids), maxLeftOut-len(w.ids[h.epoch]))]...)
		}
		l.stats.Sync.LeftOut += len(h.ids)
	}
	return true
}

// askLeftOut asks each peer whose answers left out envelopes that gossip
// was bringing, GossipGrace after the last such answer, for those that
// have not come: sent across a partition just before it healed, or to a
// member that was offline, gossip does not bring them. The responder
// leaves out only what reached it less than GossipGrace before it
// answered, so the second answer carries them: leaving out never stops
// catch-up, it only waits for gossip once.
func (l *Loop) askLeftOut() {
	for _, p := range slices.Sorted(maps.Keys(l.leftOut)) {
		w := l.leftOut[p]
		if l.now.Sub(w.at) < l.cfg.GossipGrace {
			continue
		}
		if l.removed || !l.IsMember(p) || l.holdsAll(w.ids) {
			delete(l.leftOut, p)
			continue
		}
		// Asked at once, as a next page is (the last request to this
		// peer was GossipGrace ago, not SyncTimeout): what was left out
		// comes that much later than if it had been sent, no more.
		ask := w.ask
		ask.logs = l.currentDigests(ask.logs)
		last, asked := l.behindAsk[p]
		delete(l.behindAsk, p)
		if l.askSyncFor(p, ask) {
			l.stats.Sync.LeftOutAsks++
			delete(l.leftOut, p)
		} else if asked {
			l.behindAsk[p] = last
		}
	}
}
