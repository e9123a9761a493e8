package ordering

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

// askSync asks peer for catch-up, at most once per SyncTimeout per peer.
func (l *Loop) askSync(peer string) { l.askSyncFor(peer, syncAsk{}) }

// askSyncLogs asks peer for catch-up and for the logs of the canonical
// epochs where its messages differ from the digests given.
func (l *Loop) askSyncLogs(peer string, logs []LogDigest) { l.askSyncFor(peer, syncAsk{logs: logs}) }

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
	if len(held) > 0 {
		req.newest = held[0].Number
	}
	req.heldLogs = l.heldLogs(held, ask.logs)
	req.maxBytes = maxSyncBytes
	if len(l.requests) > 0 && !ask.page {
		req.maxBytes = firstPageBytes
	}
	sig, err := st.Suite().SignWithLabel(st.Signer(), syncLabel, req.tbs(), l.cfg.Rand)
	if err != nil {
		return false
	}
	req.signature = sig
	l.nextReq++
	l.requests[l.nextReq] = &outstanding{to: peer, sent: l.now, ask: ask}
	l.behindAsk[peer] = l.now
	l.stats.SyncRequests++
	l.out.Requests = append(l.out.Requests, OutRequest{To: peer, ID: l.nextReq, Body: req.encode()})
	return true
}

// serveSync answers a catch-up request.
func (l *Loop) serveSync(from string, id uint64, body []byte) {
	respond := func(r *syncResponse) {
		l.out.Responses = append(l.out.Responses, OutResponse{To: from, ID: id, Body: r.encode()})
	}
	req, err := decodeSyncRequest(body)
	if err != nil || !bytes.Equal(req.groupID, l.groupID) {
		l.reject(from, fmt.Errorf("%w: sync request", ErrMalformedRequest))
		respond(&syncResponse{status: syncUnknown})
		return
	}
	// Nothing is served, not even whether an epoch exists here, before
	// the requester proved it is a member (see authenticate).
	if err := l.authenticate(from, req); err != nil {
		l.stats.Unauthenticated++
		l.reject(from, err)
		if errors.Is(err, ErrStaleRequest) {
			respond(&syncResponse{status: syncStale})
		} else {
			respond(&syncResponse{status: syncRefused})
		}
		return
	}
	if l.removed || l.epochs[l.tip.ID].state == nil {
		respond(&syncResponse{status: syncGone})
		return
	}
	// Start from the newest epoch the requester holds that is on this
	// member's canonical chain.
	var start *Node
	losing := false
	for _, h := range req.have {
		n := l.graph.Get(h)
		if n == nil || l.epochs[h].state == nil {
			continue // unknown here, or known without its state: no say
		}
		if l.onCanonical(h) {
			start = n
			break
		}
		losing = true
	}
	if start == nil {
		// Rejoin only when sure: the requester's epochs are on branches
		// this member holds and saw lose, or all older than the history
		// this member pruned (a joiner's first epoch is not such a limit).
		// Otherwise they may be on a branch this member has not seen yet.
		switch {
		case losing || (l.prunedBelow > 0 && req.newest < l.prunedBelow):
			respond(l.rejoinResponse(req, syncRejoin))
		case !l.inTip(req.signatureKey):
			// Not a member here: the requester counts such refusals
			// among the members of its own epoch.
			respond(&syncResponse{status: syncRefused})
		case req.wantGroupInfo:
			// A member here whose history most of its epoch has left
			// (abandoned): the way back is a rejoin.
			respond(l.rejoinResponse(req, syncRejoin))
		case req.newest < l.graph.Root().Number:
			// Older than all this member holds (it joined later): a
			// GroupInfo the requester uses if no one with older history
			// answers.
			respond(l.rejoinResponse(req, syncOlder))
		default:
			respond(&syncResponse{status: syncUnknown})
		}
		return
	}
	if r := l.removedResponse(req, start); r != nil {
		respond(r)
		return
	}
	r := &syncResponse{status: syncOK, tip: l.tip.ID}
	if req.wantVotes {
		r.heads = l.heldHeads(req.held)
	}
	size, limit := 0, maxSyncBytes
	if req.maxBytes > 0 && int(req.maxBytes) < limit {
		limit = int(req.maxBytes)
	}
	add := func(e []byte) bool {
		if size+len(e) > limit && len(r.envelopes) > 0 {
			r.more = true
			return false
		}
		size += len(e)
		r.envelopes = append(r.envelopes, e)
		return true
	}
	// What the requester holds of each epoch's log is not sent again.
	skip := make(map[EpochID]map[[8]byte]bool, len(req.heldLogs))
	for _, h := range req.heldLogs {
		ids := make(map[[8]byte]bool, len(h.ids))
		for _, id := range h.ids {
			ids[id] = true
		}
		skip[h.epoch] = ids
	}
	// addEntry adds a log entry of epoch n, read back from the archive if
	// it is not in memory; one that cannot be read is left out.
	addEntry := func(n *Node, e *logEntry) bool {
		if skip[n.ID][[8]byte(e.payload[:8])] {
			return true
		}
		if size+e.size > limit && len(r.envelopes) > 0 {
			r.more = true
			return false
		}
		data, err := l.envelope(e)
		if err != nil {
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeStorage, Err: err})
			return true
		}
		return add(data)
	}
	chain := l.graph.Chain(l.tip)
	// Logs whose digest differs from the requester's come first
	// (anti-entropy).
	byNumber := map[uint64]*Node{}
	for _, n := range chain {
		byNumber[n.Number] = n
	}
	// The log of the requester's newest epoch follows the logs that
	// differ, unless its digest says the requester has it all.
	sendStart := true
	// Epochs that differ deeper than this member's heads list one by one
	// (see askBack).
	var deep []LogDigest
	floor := l.headLogsFloor()
	for _, d := range req.logs {
		n := byNumber[d.Epoch]
		if n == nil {
			continue
		}
		info := l.epochs[n.ID]
		same := info.appCount == d.Count && info.appDigest == d.Digest
		if n == start {
			sendStart = !same
			continue
		}
		if same {
			continue
		}
		if n.Number < floor {
			deep = append(deep, LogDigest{Epoch: n.Number, Count: info.appCount, Digest: info.appDigest})
		}
		for _, e := range info.log {
			if !addEntry(n, e) {
				break
			}
		}
	}
	started := false
	for _, n := range chain {
		if n == start {
			started = true
		}
		if !started {
			continue
		}
		info := l.epochs[n.ID]
		if n != start && info.commit != nil && !add(info.commit) {
			break
		}
		if n == start && !sendStart {
			continue
		}
		full := false
		for _, e := range info.log {
			if !addEntry(n, e) {
				full = true
				break
			}
		}
		if full {
			break
		}
	}
	respond(r)
	l.askBack(from, deep)
}

// heldLogs lists what this member holds of the logs a responder may send
// it: those of its newest held epochs (on any branch: the responder starts
// from the newest of them on its own chain) and of the canonical epochs
// whose digests it sends, within maxHeldIDs. held is every epoch held,
// newest first.
func (l *Loop) heldLogs(held []*Node, differ []LogDigest) []heldLog {
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
		if info == nil || len(info.log)+len(info.refused) == 0 || (i >= 8 && !(want[n.Number] && l.onCanonical(n.ID))) {
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
			out = append(out, LogDigest{Epoch: n.Number, Count: info.appCount, Digest: info.appDigest})
		}
	}
	return out
}

// askBack asks the requester of logs for its logs of the epochs given,
// where its digests differ from this member's and that lie deeper than
// this member's heads list one by one. The requester compared spans and
// found them different, but cannot tell which of the two lacks messages;
// this member cannot tell either from the requester's heads when the
// requester's span starts below its own history (it joined, or rejoined,
// later) and the epoch is too deep for a head's Logs. That is how a member
// finds messages sent on its first epoch by a member it could not reach
// then. The digest of the tip goes along, so that the requester does not
// send the tip's log if it has nothing more there.
func (l *Loop) askBack(from string, deep []LogDigest) {
	if len(deep) == 0 {
		return
	}
	if info := l.epochs[l.tip.ID]; info != nil {
		deep = append([]LogDigest{{Epoch: l.tip.Number, Count: info.appCount, Digest: info.appDigest}}, deep...)
	}
	l.askSyncLogs(from, deep)
}

// headLogsFloor returns the number of the oldest epoch this member's head
// lists in Logs when it lists logDigests of them, and 0 when it lists
// every epoch with messages it holds.
func (l *Loop) headLogsFloor() uint64 {
	if logs := l.headLogs(); len(logs) == logDigests {
		return logs[len(logs)-1].Epoch
	}
	return 0
}

// heldHeads returns the signed heads this member holds that are newer
// than those the requester holds, in the order of the members'
// identities, within maxSyncBytes.
func (l *Loop) heldHeads(theirs []heldVote) [][]byte {
	has := make(map[[16]byte]uint64, len(theirs))
	for _, v := range theirs {
		has[v.id] = v.seq
	}
	ids := make([]string, 0, len(l.heads))
	for id := range l.heads {
		if seq, ok := has[identityHash(id)]; ok && seq >= l.graph.votes[id].Seq {
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out [][]byte
	size := 0
	for _, id := range ids {
		if size+len(l.heads[id]) > maxSyncBytes {
			break
		}
		size += len(l.heads[id])
		out = append(out, l.heads[id])
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

// removedResponse refuses a requester that was a member at start (the
// newest of its epochs on this member's canonical chain) but is not one at
// the tip: it was removed on this branch. The refusal names start and
// carries the commit that follows it here, so that the requester sees the
// removing branch and can count this member's vote there. It returns nil
// if the requester is still a member, or cannot prove it was one.
func (l *Loop) removedResponse(req *syncRequest, start *Node) *syncResponse {
	tip := l.epochs[l.tip.ID].state
	if _, ok := tip.Tree().FindSignatureKey(req.signatureKey); ok || start == l.tip {
		return nil
	}
	at := l.epochs[start.ID].state
	if _, ok := at.Tree().FindSignatureKey(req.signatureKey); !ok {
		return nil
	}
	r := &syncResponse{status: syncRefused, tip: start.ID}
	// Told once per branch: the requester holds the removing commit as
	// an opaque epoch from the first refusal (or heard it from others);
	// asking again, it gets the bare refusal naming start.
	var removing *Node
	for n := l.tip; n != nil && n.parent != nil; n = n.parent {
		if n.parent == start {
			removing = n
		}
	}
	if removing != nil {
		if l.toldRemoved[req.requester] == removing.ID {
			return r
		}
		if l.toldRemoved == nil || len(l.toldRemoved) >= maxToldRemoved {
			l.toldRemoved = map[string]EpochID{}
		}
		l.toldRemoved[req.requester] = removing.ID
	}
	// The proposals of start first: the commit may refer to them.
	for _, e := range l.epochs[start.ID].log {
		if e.kind == KindHandshake {
			r.envelopes = append(r.envelopes, e.data)
		}
	}
	var child *Node
	for n := l.tip; n != nil && n.parent != nil; n = n.parent {
		if n.parent == start {
			child = n
			if c := l.epochs[n.ID].commit; c != nil {
				r.envelopes = append(r.envelopes, c)
			}
		}
	}
	// The heads of start's members that vote on this branch: the
	// requester cannot read past the commit that removed it, so it could
	// not place them itself, and would count this branch short.
	if child != nil {
		size := 0
		for _, m := range start.Members {
			at, h := l.graph.countsAt(m), l.heads[m]
			if at == nil || h == nil || !l.graph.inSubtree(at.ID, child) || size+len(h) > maxSyncBytes {
				continue
			}
			size += len(h)
			r.heads = append(r.heads, h)
		}
	}
	return r
}

// maxToldRemoved bounds the removed members a member remembers having
// told (see removedResponse); past it, it forgets them all and tells again.
const maxToldRemoved = 4096

// inTip reports whether the signature key is a member's at the tip.
func (l *Loop) inTip(key []byte) bool {
	_, ok := l.epochs[l.tip.ID].state.Tree().FindSignatureKey(key)
	return ok
}

// widenSync asks the members of this member's epoch that were not asked
// lately, when the members it heard from could not help: those that share
// its history, or say it was removed, may be quiet ones (a removed member
// sends no heads).
func (l *Loop) widenSync() {
	if l.removed {
		return
	}
	for _, m := range l.tip.Members {
		if m == l.self || l.refusedBy[m] || l.goneBy[m] {
			continue
		}
		l.askSync(m)
	}
}

// rejoinResponse gives a member that shares no retained epoch with this
// one a GroupInfo to rejoin by external commit, if it is still a member:
// the request (authenticated) is signed with the key of the requester's
// own leaf at the tip, the leaf its external commit will replace. Nobody
// else gets a GroupInfo with external_pub.
func (l *Loop) rejoinResponse(req *syncRequest, status uint8) *syncResponse {
	st := l.epochs[l.tip.ID].state
	li, ok := st.Tree().FindSignatureKey(req.signatureKey)
	if !ok || Identity(st.Tree().Leaf(li)) != req.requester {
		return &syncResponse{status: syncRefused}
	}
	gi, err := st.GroupInfo(group.GroupInfoOptions{WithTree: true, WithExternalPub: true})
	if err != nil {
		return &syncResponse{status: syncRefused}
	}
	return &syncResponse{status: status, tip: l.tip.ID, groupInfo: codec.MustMarshal(wire.NewMLSMessage(gi))}
}

// syncResponse handles the answer to a catch-up request.
func (l *Loop) syncResponse(id uint64, body []byte, err error) {
	r := l.requests[id]
	delete(l.requests, id)
	if r == nil || err != nil {
		return
	}
	resp, derr := decodeSyncResponse(body)
	if derr != nil {
		l.reject(r.to, derr)
		return
	}
	l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeSynced, From: r.to, Count: len(resp.envelopes), Epoch: uint64(resp.status)})
	switch resp.status {
	case syncOK:
		l.wantLog = false
		took := 0
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
				took++
			} else if len(l.buffered) > nb {
				took++
			}
		}
		// A page that brought nothing this member could take in (what
		// it refuses, or cannot place) would come again the same: the
		// next one waits for the usual triggers.
		if took == 0 {
			resp.more = false
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
	l.removed = false
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
	// have missed messages from its oldest held epoch up to the GroupInfo's.
	missedFrom, missedTo := min(l.graph.Root().Number, gi.GroupContext.Epoch), gi.GroupContext.Epoch
	// Start a new history at the GroupInfo's epoch.
	root := &Node{ID: resp.tip, Number: gi.GroupContext.Epoch, Members: identities(sc.State)}
	l.startOver(&epochInfo{node: root, seenAt: l.now})
	env := (&Envelope{Kind: KindHandshake, Epoch: resp.tip, Payload: sc.Message}).Encode()
	l.seen[MessageHash(sc.Message)] = struct{}{}
	l.out.Publish = append(l.out.Publish, env)
	l.stats.Rejoin++
	l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejoined, MissedFrom: missedFrom, MissedTo: missedTo, Epoch: sc.State.Epoch()})
	l.addEpoch(l.epochs[root.ID], sc, env, wire.Sender{Type: wire.SenderNewMemberCommit})
	l.removed = false
	old.Destroy()
	l.reconsider()
	for _, o := range l.outboxInOrder() {
		if !l.onCanonical(o.epoch) {
			l.stats.Resent++
			l.transmit(o)
		}
	}
	l.changes.touch()
}
