package ordering

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

// serveSync answers a catch-up request.
func (l *Loop) serveSync(from string, id uint64, body []byte) {
	respond := func(r *syncResponse) {
		body := r.encode()
		l.stats.Sync.countAnswer(r, body)
		l.out.Responses = append(l.out.Responses, OutResponse{To: from, ID: id, Body: body})
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
	holds, only, relist := l.requesterHolds(req)
	r.relist = relist
	lack, lackIDs := l.lacking(req.heldLogs, only)
	// What gossip brought here moments ago is left out, and named: it is
	// most likely on its way to the requester too (see leftOut). Not from
	// the log of the epoch that added the requester, if this member took
	// in no head of it before the message came: a new member subscribes
	// once it has its Welcome, after the epoch's first messages may have
	// gone out, so gossip would never bring them, and it would wait out
	// GossipGrace to ask again (a second, at a joiner's first messages).
	heard, wasHeard := l.heardSince[req.requester]
	var addedEpoch *Node // the last epoch asked about, and whether it added the requester
	added := false
	addedThere := func(n *Node) bool {
		if n != addedEpoch {
			addedEpoch, added = n, l.addedIn(n, req.requester)
		}
		return added
	}
	leftOut := 0
	leave := func(n *Node, e *logEntry) bool {
		if l.cfg.KeepGossiped || e.kind != KindApplication || e.gossipAt == 0 || l.now.UnixNano()-e.gossipAt >= int64(l.cfg.GossipGrace) || leftOut >= maxLeftOut ||
			(!wasHeard || heard >= e.gossipAt) && addedThere(n) {
			return false
		}
		if k := len(r.leftOut); k == 0 || r.leftOut[k-1].epoch != n.ID {
			r.leftOut = append(r.leftOut, heldLog{epoch: n.ID})
		}
		h := &r.leftOut[len(r.leftOut)-1]
		h.ids = append(h.ids, [8]byte(e.payload[:8]))
		leftOut++
		return true
	}
	// addEntry adds a log entry of epoch n, read back from the archive if
	// it is not in memory; one that cannot be read is left out.
	addEntry := func(n *Node, e *logEntry) bool {
		if hs := holds[n.ID]; hs != nil && hs([8]byte(e.payload[:8]), e.kind) {
			return true
		}
		if leave(n, e) {
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
		mine := info.digest(n.Number)
		same := mine.Count == d.Count && mine.Digest == d.Digest
		if n == start {
			sendStart = !same
			continue
		}
		// Epochs after start follow with their commits below: sent here
		// too, their logs went twice. Nor does the log of an epoch the
		// requester was not a member of go: it could not read it (it
		// rejoined after it), and it is not the requester's to have.
		if same || n.Number > start.Number || !slices.Contains(n.Members, req.requester) {
			continue
		}
		if n.Number < floor {
			deep = append(deep, mine)
		}
		for _, e := range info.servable() {
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
		full := false
		for _, e := range info.servable() {
			// The requester's digest of start counts application messages
			// only: when it says the requester has them all, the
			// proposals there still go (those it holds are left out), or
			// a commit that refers to one it lacks waits, and every log
			// after it with it.
			if n == start && !sendStart && e.kind == KindApplication {
				continue
			}
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
	back := backAsk{ids: lackIDs, deep: len(deep) > 0}
	for _, d := range lack {
		if !slices.ContainsFunc(deep, func(x LogDigest) bool { return x.Epoch == d.Epoch }) {
			deep = append(deep, d)
		}
	}
	back.logs = deep
	back.view = l.backView(deep, req.logs, lackIDs)
	l.askBack(from, back)
}

// backView summarizes what an ask back depends on: this member's tip, its
// digests of the epochs it would ask about (mine), the requester's digests
// of them (from its request), and the envelopes the requester listed that
// this member lacks. An ask back that brought nothing is not made again
// while all of these stay the same (see Loop.fruitless): two members that
// differ by envelopes neither can send (one refused them, the other never
// saw them) asked each other back for ever, thousands of requests a
// second in a group of 100.
func (l *Loop) backView(mine, theirs []LogDigest, lack map[EpochID][][8]byte) [32]byte {
	them := map[uint64]LogDigest{}
	for _, d := range theirs {
		them[d.Epoch] = d
	}
	b := sha256.New()
	b.Write([]byte("back"))
	b.Write(l.tip.ID[:])
	for _, d := range mine {
		putDigest(b, d)
		putDigest(b, them[d.Epoch])
	}
	epochs := make([]EpochID, 0, len(lack))
	for e := range lack {
		epochs = append(epochs, e)
	}
	slices.SortFunc(epochs, func(a, b EpochID) int { return bytes.Compare(a[:], b[:]) })
	for _, e := range epochs {
		b.Write(e[:])
		ids := slices.Clone(lack[e])
		slices.SortFunc(ids, func(a, b [8]byte) int { return bytes.Compare(a[:], b[:]) })
		for _, id := range ids {
			b.Write(id[:])
		}
	}
	return [32]byte(b.Sum(nil))
}

// backAsk is what to ask a requester back for: the logs of epochs where
// the two differ deep (deep), or where the requester listed envelopes
// this member lacks (ids).
type backAsk struct {
	logs []LogDigest
	ids  map[EpochID][][8]byte
	deep bool
	view [32]byte // see backView
}

// done reports whether a pending ask back is no longer needed: it was
// only for envelopes that have arrived since.
func (l *Loop) backDone(b backAsk) bool {
	return !b.deep && l.holdsAll(b.ids)
}

// holdsAll reports whether this member holds (or refuses) every envelope
// listed, by epoch; the epochs it does not know are passed over.
func (l *Loop) holdsAll(ids map[EpochID][][8]byte) bool {
	for epoch, ids := range ids {
		info := l.epochs[epoch]
		if info == nil {
			continue
		}
		mine := info.heldIDs()
		for _, id := range ids {
			if !mine[id] {
				return false
			}
		}
	}
	return true
}

// heldIDs returns the first 8 bytes of the payload hashes of the
// envelopes held in the epoch's log and of those refused there.
func (info *epochInfo) heldIDs() map[[8]byte]bool {
	mine := make(map[[8]byte]bool, len(info.log)+len(info.refused))
	for _, e := range info.log {
		mine[[8]byte(e.payload[:8])] = true
	}
	for id := range info.refused {
		mine[id] = true
	}
	return mine
}

// lacking returns this member's digests of its canonical epochs where a
// requester lists as held an envelope this member does not hold (only
// has those of the sketched logs, see requesterHolds): the
// requester took in a message that this member never saw, or refuses
// here. A member asks only a peer whose head shows more messages than it
// holds (see behind), so the one that holds fewer but not all of them
// learns that it lacks some here, from the other's request, and asks back.
func (l *Loop) lacking(held []heldLog, only map[EpochID][][8]byte) ([]LogDigest, map[EpochID][][8]byte) {
	var out []LogDigest
	var ids map[EpochID][][8]byte
	for _, h := range held {
		info := l.epochs[h.epoch]
		if info == nil || info.state == nil || !l.onCanonical(h.epoch) {
			continue
		}
		missing := only[h.epoch]
		if h.sketch == nil {
			mine := info.heldIDs()
			for _, id := range h.ids {
				if !mine[id] {
					missing = append(missing, id)
				}
			}
		}
		missing = missing[:min(len(missing), maxBackIDs)]
		if len(missing) > 0 {
			out = append(out, info.digest(info.node.Number))
			if ids == nil {
				ids = map[EpochID][][8]byte{}
			}
			ids[h.epoch] = missing
		}
	}
	return out, ids
}

// requesterHolds reads what a request says its requester holds of each
// epoch's log: for each epoch listed, whether it holds an envelope (by
// the first 8 bytes of its MessageHash). Of a sketched log, it also
// returns the envelopes the requester holds and this member does not
// (only). relist says that a sketch did not peel: the requester is told
// to ask again with a larger one (syncResponse.relist), and of that log
// only what peeled is sent now, and its proposals: a commit after it that
// refers to one the requester lacks would wait, and every log after the
// commit with it, until the sketch peels.
func (l *Loop) requesterHolds(req *syncRequest) (holds map[EpochID]func([8]byte, Kind) bool, only map[EpochID][][8]byte, relist bool) {
	holds = make(map[EpochID]func([8]byte, Kind) bool, len(req.heldLogs))
	only = map[EpochID][][8]byte{}
	peeled := true
	key := sketchKey(req.nonce)
	for _, h := range req.heldLogs {
		if h.sketch == nil {
			ids := make(map[[8]byte]bool, len(h.ids))
			for _, id := range h.ids {
				ids[id] = true
			}
			holds[h.epoch] = func(id [8]byte, _ Kind) bool { return ids[id] }
			continue
		}
		info := l.epochs[h.epoch]
		if info == nil {
			continue // nothing of it to send
		}
		mine := newLogSketch(len(h.sketch.cells))
		for id := range info.heldIDs() {
			mine.add(key, id, 1)
		}
		h.sketch.subtract(mine)
		// What peeled of a sketch too small is still what the requester
		// lacks (a cell that peels holds one id, but for a checksum
		// collision of 2^-32): sent now, it is not in the difference the
		// next, larger sketch must tell.
		theirs, lacks, ok := h.sketch.peel(key)
		peeled = peeled && ok
		send := make(map[[8]byte]bool, len(lacks))
		for _, id := range lacks {
			send[id] = true
		}
		holds[h.epoch] = func(id [8]byte, kind Kind) bool { return !send[id] && (ok || kind == KindApplication) }
		if len(theirs) > 0 {
			only[h.epoch] = theirs
		}
	}
	return holds, only, !peeled
}

// maxBackIDs bounds the envelopes a member remembers lacking per epoch
// (see backDone); past it, asking back waits for the rest too.
const maxBackIDs = 256

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
func (l *Loop) askBack(from string, back backAsk) {
	deep := back.logs
	if len(deep) == 0 || l.fruitless[from] == back.view {
		return // nothing to ask, or asked already and it brought nothing
	}
	if info := l.epochs[l.tip.ID]; info != nil && !slices.ContainsFunc(deep, func(d LogDigest) bool { return d.Epoch == l.tip.Number }) {
		deep = append([]LogDigest{info.digest(l.tip.Number)}, deep...)
	}
	if l.askingLogs(deep) || !l.askSyncFor(from, syncAsk{logs: deep, view: back.view}) {
		// Asked later (see askBackPending): the requester may not ask
		// again, and nothing else tells this member what it lacks.
		if l.backPending == nil || len(l.backPending) >= maxFruitless {
			l.backPending = map[string]backAsk{}
		}
		back.logs = deep
		l.backPending[from] = back
	}
}

// askBackPending asks back the peers that askBack could not ask at once.
func (l *Loop) askBackPending() {
	if len(l.backPending) == 0 || l.removed {
		return
	}
	peers := make([]string, 0, len(l.backPending))
	for p := range l.backPending {
		peers = append(peers, p)
	}
	sort.Strings(peers)
	for _, p := range peers {
		back := l.backPending[p]
		if !l.IsMember(p) || l.backDone(back) || l.fruitless[p] == back.view {
			delete(l.backPending, p)
			continue
		}
		if ds := l.currentDigests(back.logs); !l.askingLogs(ds) && l.askSyncFor(p, syncAsk{logs: ds, view: back.view}) {
			delete(l.backPending, p)
		}
	}
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
		if slices.Contains(req.have, opaqueID(removing.CommitHash)) {
			return r // it holds the removing commit, from another member
		}
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
	return &syncResponse{status: status, tip: l.tip.ID, groupInfo: codec.MustMarshal(wire.NewMLSMessage(gi)), memberSince: l.memberSince(req.requester)}
}

// memberSince is the first epoch of the canonical chain from which the
// member has been in every epoch up to the tip (the oldest held, if it
// was a member of all of them).
func (l *Loop) memberSince(member string) uint64 {
	since := l.tip.Number
	for n := l.tip; n != nil && slices.Contains(n.Members, member); n = n.parent {
		since = n.Number
		// A history that a rejoin started holds nothing before its
		// root: the member may have been one since anywhere in the range
		// this member missed then (a member added again on the winning
		// branch, rejoining from the GroupInfo of one that rejoined
		// after that add, reported too short a range and lacked the
		// messages in between).
		if info := l.epochs[n.ID]; n.parent == nil && info != nil && info.missedFrom > 0 {
			since = min(since, info.missedFrom)
		}
	}
	return since
}

// addedIn reports whether member was added to the group by the commit that
// made epoch n: a member of n and not of its parent (held here).
func (l *Loop) addedIn(n *Node, member string) bool {
	parent := l.graph.Get(n.Parent)
	return parent != nil && slices.Contains(n.Members, member) && !slices.Contains(parent.Members, member)
}
