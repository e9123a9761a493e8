package ordering

import (
	"bytes"
	"io"
	"slices"
	"sort"
)

// askSync asks peer for catch-up, at most once per SyncTimeout per peer,
// when something it sent shows that this member lacks something (an
// envelope of an unknown epoch, a proposal a commit refers to, a member
// it does not know), unless a request is outstanding: its answer likely
// brings the same, and heads call for what it does not (see
// deferAsk).
func (l *Loop) askSync(peer string) { l.askSyncIdle(peer, syncAsk{}) }

// askSyncIdle asks peer with ask unless a request is outstanding (see
// askSync).
func (l *Loop) askSyncIdle(peer string, ask syncAsk) {
	if len(l.requests) > 0 {
		return
	}
	l.askSyncFor(peer, ask)
}

// askVotes asks peer for catch-up and for the signed heads it holds: the
// two follow different branches of a fork both know, so they count
// different votes (heads lost in a partition, from members since removed
// and silent). Once both hold the union, the fork choice agrees.
func (l *Loop) askVotes(peer string) {
	if !l.wantVotesFrom(peer) || (!l.votesAsked.IsZero() && l.now.Sub(l.votesAsked) < l.cfg.SyncTimeout) {
		return
	}
	if l.askSyncFor(peer, syncAsk{wantVotes: true}) {
		l.votesAsked = l.now
	}
}

// wantVotesFrom reports whether to ask peer for its heads: its vote is
// for an epoch this member has held a while on another branch, and it was
// not asked lately. Any catch-up request to such a peer asks for them.
func (l *Loop) wantVotesFrom(peer string) bool {
	v, ok := l.graph.votes[peer]
	if !ok {
		return false
	}
	info := l.epochs[v.Tip]
	if info == nil || l.onCanonical(v.Tip) || l.now.Sub(info.seenAt) < l.cfg.SyncTimeout {
		return false
	}
	last, asked := l.votesFrom[peer]
	return !asked || l.now.Sub(last) >= rejoinPatience*l.cfg.SyncTimeout
}

// syncAsk is what a catch-up request asks for beyond the epochs after the
// newest one both hold.
type syncAsk struct {
	page          bool        // the next page of an answer that said there was more
	logs          []LogDigest // the requester's digests: the logs that differ
	wantVotes     bool        // the signed heads the responder holds
	wantGroupInfo bool        // a GroupInfo if it holds none of the requester's epochs
	// view is what a request for logs that differ depends on (see
	// askFor): if the answer brings nothing, not asked again until it
	// changes.
	view [32]byte
	// tip is the unknown tip of the head that called for the request;
	// along, the known tip of the head whose logs differ.
	tip, along EpochID
	// joinLog marks a new member's ask for the log of its join epoch
	// (Loop.wantLog), counted apart (SyncCost.JoinAsks).
	joinLog bool
	// prompt marks an ask made so that the responder asks back for a
	// leave of this member's it may lack (SyncCost.Prompts).
	prompt bool
	// widen marks a request of widenSync, which asks several members
	// at once to find one that can help.
	widen bool
}

// alongTip returns whether an epoch lies on one of the two chains from
// the fork point of this member's tip and tip, up to either: a responder
// whose tip that was when it sent its head starts from one of them, and
// from this member's own tip when it has gone on since (a head is older
// than its member's state), whose log then goes whole unless listed.
func (l *Loop) alongTip(tip *Node) func(int, *Node) bool {
	fork := l.graph.ForkPoint(l.tip, tip)
	return func(_ int, n *Node) bool {
		return fork != nil && n.Number >= fork.Number && (l.graph.IsAncestor(n.ID, tip.ID) || l.graph.IsAncestor(n.ID, l.tip.ID))
	}
}

// askSyncFor sends a catch-up request, and reports whether it did.
func (l *Loop) askSyncFor(peer string, ask syncAsk) bool {
	// Only members of an epoch held here are asked: a request shows the
	// epochs this member holds, and an outsider must not learn even that.
	if peer == "" || peer == l.self || !l.IsMember(peer) {
		return false
	}
	if last, ok := l.behindAsk[peer]; ok && l.now.Sub(last) < l.cfg.SyncTimeout {
		return false
	}
	// A removed member does not ask again a peer that refused it, but
	// for a rare re-check, and only once the peer's head has moved: the
	// refusal would come again (see removedRecheck).
	if r := l.refusedFrom[peer]; r != nil && l.removed && !l.recheckDue(r) {
		return false
	}
	// And it asks one peer per SyncTimeout at most.
	if l.removed && !l.removedAsk.IsZero() && l.now.Sub(l.removedAsk) < l.cfg.SyncTimeout {
		return false
	}
	if len(l.requests) >= 4 {
		return false
	}
	for _, r := range l.requests {
		if r.to == peer {
			return false
		}
	}
	st := l.canonicalState()
	if st == nil {
		return false
	}
	if l.wantVotesFrom(peer) {
		ask.wantVotes = true
	}
	if l.removed && l.readded {
		ask.wantGroupInfo = true
	}
	if ask.wantVotes {
		l.votesFrom[peer] = l.now
	}
	req := &syncRequest{
		groupID: l.groupID, requester: l.self, responder: peer, time: uint64(l.now.UnixMilli()),
		signatureKey: st.Signer().PublicKey(), logs: ask.logs, wantVotes: ask.wantVotes, wantGroupInfo: ask.wantGroupInfo,
	}
	if _, err := io.ReadFull(l.cfg.Rand, req.nonce[:]); err != nil {
		return false
	}
	if ask.wantVotes {
		req.held = l.heldVotes()
	}
	// Every epoch held, newest first: the responder starts from the
	// newest one on its canonical chain.
	var held []*Node
	for _, info := range l.epochs {
		if info.state != nil {
			held = append(held, info.node)
		}
	}
	sort.Slice(held, func(i, j int) bool {
		if held[i].Number != held[j].Number {
			return held[i].Number > held[j].Number
		}
		return bytes.Compare(held[i].ID[:], held[j].ID[:]) < 0
	})
	for _, n := range held[:min(len(held), 2*l.cfg.Retention)] {
		req.have = append(req.have, n.ID)
	}
	// The opaque epochs last: they tell a member that removed this one
	// that it holds the removing commit (see removedResponse); others
	// know no such id and pass over it.
	req.have = append(req.have, l.opaqueHeld()...)
	if len(held) > 0 {
		req.newest = held[0].Number
	}
	// A removed member lists none: it is refused, and what it holds is
	// not sent to it anyway. Asking for logs along a known tip, a member
	// lists what it holds of the epochs the responder may send: those
	// from the fork point to that tip, and the logs it asks for.
	switch {
	case l.removed:
	case ask.along != EpochID{} && l.graph.Get(ask.along) != nil:
		req.heldLogs = l.heldLogs(held, ask.logs, l.alongTip(l.graph.Get(ask.along)))
	default:
		req.heldLogs = l.heldLogs(held, ask.logs, func(i int, _ *Node) bool { return i < 8 })
	}
	sketched := l.sketchHeld(peer, req.heldLogs, sketchKey(req.nonce))
	req.maxBytes = maxSyncBytes
	if len(l.requests) > 0 && !ask.page {
		req.maxBytes = firstPageBytes
		if ask.widen {
			req.maxBytes = probePageBytes
		}
	}
	sig, err := st.Suite().SignWithLabel(st.Signer(), syncLabel, req.tbs(), l.cfg.Rand)
	if err != nil {
		return false
	}
	req.signature = sig
	l.nextReq++
	l.requests[l.nextReq] = &outstanding{to: peer, sent: l.now, ask: ask, sketched: sketched}
	if !ask.prompt {
		l.behindAsk[peer] = l.now
	}
	if l.removed {
		l.removedAsk = l.now
	}
	l.stats.SyncRequests++
	body := req.encode()
	l.stats.Sync.countRequest(req, body)
	if ask.joinLog {
		l.stats.Sync.JoinAsks++
	}
	if ask.prompt {
		l.stats.Sync.Prompts++
	}
	if l.removed {
		l.stats.Sync.RemovedRequests++
		l.stats.Sync.RemovedRequestBytes += len(body)
	}
	l.out.Requests = append(l.out.Requests, OutRequest{To: peer, ID: l.nextReq, Body: body})
	return true
}

// opaqueHeld returns the ids of the opaque epochs this member holds (the
// commits that removed it on branches it cannot read), at most
// maxOpaqueHave, in id order.
func (l *Loop) opaqueHeld() []EpochID {
	var out []EpochID
	for id, info := range l.epochs {
		if info.opaque {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b EpochID) int { return bytes.Compare(a[:], b[:]) })
	return out[:min(len(out), maxOpaqueHave)]
}

// maxOpaqueHave bounds the opaque epochs a request lists.
const maxOpaqueHave = 8

// heldLogs lists what this member holds of the logs a responder may send
// it: those of the held epochs keep picks (the newest ones, on any branch:
// the responder starts from the newest of them on its own chain; or those
// along a known tip) and of the canonical epochs whose digests it sends,
// within maxHeldIDs. held is every epoch held, newest first.
func (l *Loop) heldLogs(held []*Node, differ []LogDigest, keep func(i int, n *Node) bool) []heldLog {
	want := map[uint64]bool{}
	for _, d := range differ {
		want[d.Epoch] = true
	}
	var out []heldLog
	total := 0
	for i, n := range held {
		if len(out) == 4*logDigests || total == maxHeldIDs {
			break
		}
		info := l.epochs[n.ID]
		if info == nil || len(info.log)+len(info.refused) == 0 || (!keep(i, n) && !(want[n.Number] && l.onCanonical(n.ID))) {
			continue
		}
		h := heldLog{epoch: n.ID, ids: make([][8]byte, 0, min(len(info.log)+len(info.refused), maxHeldIDs-total))}
		for _, e := range info.log {
			if total == maxHeldIDs {
				break
			}
			h.ids = append(h.ids, [8]byte(e.payload[:8]))
			total++
		}
		refused := make([][8]byte, 0, len(info.refused))
		for id := range info.refused {
			refused = append(refused, id)
		}
		slices.SortFunc(refused, func(a, b [8]byte) int { return bytes.Compare(a[:], b[:]) })
		for _, id := range refused {
			if total == maxHeldIDs {
				break
			}
			h.ids = append(h.ids, id)
			total++
		}
		out = append(out, h)
	}
	return out
}

// currentDigests returns this member's digests now of the canonical
// epochs numbered in ds.
func (l *Loop) currentDigests(ds []LogDigest) []LogDigest {
	if len(ds) == 0 {
		return nil
	}
	want := map[uint64]bool{}
	for _, d := range ds {
		want[d.Epoch] = true
	}
	out := make([]LogDigest, 0, len(ds))
	for n := l.tip; n != nil && len(out) < len(ds); n = n.parent {
		if info := l.epochs[n.ID]; info != nil && want[n.Number] {
			out = append(out, info.digest(n.Number))
		}
	}
	return out
}

// heldVotes lists the heads this member holds, for a request of votes:
// the responder sends only newer ones. In identity-hash order, at most
// maxHeldVotes.
func (l *Loop) heldVotes() []heldVote {
	out := make([]heldVote, 0, len(l.graph.votes))
	for id, v := range l.graph.votes {
		out = append(out, heldVote{id: identityHash(id), seq: v.Seq})
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].id[:], out[j].id[:]) < 0 })
	return out[:min(len(out), maxHeldVotes)]
}

// maxFruitless bounds the peers a member remembers a fruitless ask of
// (see askFor); past it, it forgets them all.
const maxFruitless = 4096

// widenSync asks the members of this member's epoch that were not asked
// lately, when the members it heard from could not help: those that share
// its history, or say it was removed, may be quiet ones (a removed member
// sends no heads). Those that answered no request lately go last: members
// added on a branch that lost may never have come up, and four of them
// first in the list took every request there was, for good, while members
// that would have answered were never asked.
func (l *Loop) widenSync() {
	if l.removed {
		return
	}
	for _, silent := range []bool{false, true} {
		for _, m := range l.tip.Members {
			if m == l.self || l.refusedBy[m] || l.goneBy[m] {
				continue
			}
			if l.unanswered[m] == silent {
				l.askSyncFor(m, syncAsk{widen: true})
			}
		}
	}
}

// noteUnanswered remembers that a request to peer failed or timed out
// (see widenSync).
func (l *Loop) noteUnanswered(peer string) {
	if l.unanswered == nil || len(l.unanswered) >= maxFruitless {
		l.unanswered = map[string]bool{}
	}
	l.unanswered[peer] = true
}

// removedRecheck is how many SyncTimeouts a member that holds itself
// removed waits before it asks again a peer that refused it: asked
// sooner, the peer would refuse it again. Heads of peers that did not
// refuse it, and of epochs it holds, are followed as usual, so a removal
// that loses brings it back.
//
// Past that wait it asks again only a peer whose head has named another
// tip since it refused: a refusal for removal (or from a peer that is no
// member itself) depends on the refuser's tip and on nothing the
// requester can change but by coming back, so the same tip refuses
// again. In a group whose removing branch went quiet, the removed member
// stops asking. A peer whose heads it cannot verify (its key changed in
// an epoch this member does not hold) would never seem to move: it is
// asked again after removedQuietRecheck all the same.
const removedRecheck = 10

// removedQuietRecheck is how many SyncTimeouts a member that holds itself
// removed waits before it asks again a peer that refused it and has not
// moved (see removedRecheck).
const removedQuietRecheck = 8 * removedRecheck

// recheckDue reports whether a member that holds itself removed may ask
// again a peer whose last refusal was r.
func (l *Loop) recheckDue(r *refusal) bool {
	waited := l.now.Sub(r.at)
	if r.moved {
		return waited >= removedRecheck*l.cfg.SyncTimeout
	}
	return waited >= removedQuietRecheck*l.cfg.SyncTimeout
}
