package ordering

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

type intentKind uint8

const (
	intentAdd intentKind = iota + 1
	intentRemove
	intentUpdate
	intentLeave
)

// intent is a membership change this member asked for. It stays until the
// canonical epoch shows its effect, and is proposed or committed again on
// whatever branch wins.
type intent struct {
	id         uint64
	kind       intentKind
	keyPackage []byte // add: the encoded MLSMessage
	kp         *wire.KeyPackage
	identity   string // remove: the member to remove
	baseKey    []byte // update: this member's encryption key when asked
	proposedIn EpochID
	// since is the canonical epoch number when the intent was made: only
	// epochs from there on can show it done.
	since uint64
	// tried is the epoch of the last proposal or commit carrying the
	// intent; a later attempt on another epoch is a re-issue.
	tried   EpochID
	reissue bool
	// asked is when the intent was made (zero for one restored after a
	// restart: not saved).
	asked time.Time
	// proposedAt is when it was proposed in proposedIn.
	proposedAt time.Time
}

// ownProposalWaits reports whether this member's leave, proposed in its
// tip epoch, has waited longer than the preferred committer and the next
// would take to commit it. Only a leave: this member cannot commit it
// itself, while any other proposal of its own it commits in its turn.
func (l *Loop) ownProposalWaits() bool {
	for _, in := range l.intents {
		if in.kind == intentLeave && in.proposedIn == l.tip.ID && l.now.Sub(in.proposedAt) > l.cfg.CommitDelay+2*l.cfg.CommitBackoff {
			return true
		}
	}
	return false
}

// attempt records an attempt at an intent in epoch e.
func (l *Loop) attempt(in *intent, e EpochID) {
	if !in.tried.IsZero() && in.tried != e {
		l.stats.Reissued++
	}
	in.tried = e
	in.reissue = true
}

func (l *Loop) addIntent(kind intentKind, keyPackage []byte, identity string) {
	st := l.canonicalState()
	if l.removed || st == nil {
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: ErrNotMember})
		return
	}
	l.intentSeq++
	in := &intent{id: l.intentSeq, kind: kind, keyPackage: keyPackage, identity: identity, since: l.tip.Number, asked: l.now}
	switch kind {
	case intentAdd:
		var m wire.MLSMessage
		if err := codec.Unmarshal(keyPackage, &m); err != nil || m.KeyPackage == nil {
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: fmt.Errorf("ordering: not a KeyPackage: %v", err)})
			return
		}
		if err := group.ValidateKeyPackage(m.KeyPackage, st.Suite(), l.now, l.cfg.MLS.ValidateCredential); err != nil {
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: err})
			return
		}
		in.kp = m.KeyPackage
		// A second add of one client would be an invalid proposal
		// (§12.2) for as long as the first stands: refused, whether the
		// client is in the group or this member's add of it is on its way.
		if l.intentDone(in, st) {
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: fmt.Errorf("%w: %s", ErrAlreadyMember, Identity(&in.kp.LeafNode))})
			return
		}
		if t := l.target(in); l.addOnItsWay(t) {
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: fmt.Errorf("%w: %s (an add asked for here is on its way)", ErrAlreadyMember, t)})
			return
		}
	case intentRemove:
		if _, ok := l.findMember(st, identity); !ok {
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: fmt.Errorf("%w: %s", ErrUnknownMember, identity)})
			return
		}
	case intentLeave:
		if len(l.tip.Members) == 1 && l.tip.Members[0] == l.self {
			// Alone in the group: nobody could commit the removal, and
			// nobody needs to. The group ends here for this member.
			l.removed = true
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRemoved, Epoch: l.tip.Number})
			l.changes.touch()
			return
		}
	case intentUpdate:
		in.baseKey = st.Tree().Leaf(st.OwnLeaf()).EncryptionKey
		for _, other := range l.intents {
			if other.kind == intentUpdate && l.doneAt(other, 0) == nil {
				return // one pending refresh is enough
			}
		}
	}
	l.intents = append(l.intents, in)
	l.changes.touch()
	if info := l.epochs[l.tip.ID]; info.pendSeen.IsZero() {
		info.pendSeen = l.now
	}
}

// addOnItsWay reports whether the last change this member asked for of
// the client with the identity is an add that no epoch of the canonical
// chain shows yet.
func (l *Loop) addOnItsWay(identity string) bool {
	var last *intent
	for _, in := range l.intents {
		if l.target(in) == identity {
			last = in
		}
	}
	return last != nil && last.kind == intentAdd && l.doneAt(last, 0) == nil
}

// Adding returns the identities of the clients whose add this member
// asked for and no epoch of the canonical chain shows yet (see
// ErrAlreadyMember).
func (l *Loop) Adding() []string {
	var out []string
	for _, in := range l.intents {
		if t := l.target(in); in.kind == intentAdd && !slices.Contains(out, t) && l.addOnItsWay(t) {
			out = append(out, t)
		}
	}
	return out
}

// WaitingChange is a membership change that no epoch of the canonical
// chain shows yet: asked for by this member, or proposed by another.
type WaitingChange struct {
	// Kind is "add", "remove" or "leave" (the proposer's own removal).
	Kind     string
	Identity string // the member added or removed
	// By is the member that proposed it; empty for this member's own.
	By string
	// Asked is when this member asked for it; zero if before this member
	// last started, and for another's proposal.
	Asked time.Time
}

// Waiting returns the membership changes that no epoch of the canonical
// chain shows yet: first those this member asked for, in the order asked
// (a change that follows an undone one of the same member waits too),
// then the Add, Remove and SelfRemove proposals of other members cached
// in the canonical epoch, in the order received. A change that is
// refused is never among them; one that waits long is what a user needs
// to see (the group may be unable to commit it).
func (l *Loop) Waiting() []WaitingChange {
	out := l.waitingIntents()
	info := l.epochs[l.tip.ID]
	if info == nil || info.state == nil {
		return out
	}
	st := info.state
	tree := st.Tree()
	identity := func(leaf uint32) string {
		if n := tree.Leaf(group.LeafIndex(leaf)); n != nil {
			return Identity(n)
		}
		return ""
	}
	for _, cp := range st.CachedProposals() {
		if cp.Sender.Type != wire.SenderMember || cp.Sender.Index == uint32(st.OwnLeaf()) {
			continue // this member's own are its intents, above
		}
		by := identity(cp.Sender.Index)
		var w WaitingChange
		switch p := cp.Proposal.(type) {
		case *wire.Add:
			if _, in := tree.FindSignatureKey(p.KeyPackage.LeafNode.SignatureKey); in {
				continue // invalid (§12.2), so never committed: nothing waits
			}
			w = WaitingChange{Kind: "add", Identity: Identity(&p.KeyPackage.LeafNode)}
		case *wire.Remove:
			w = WaitingChange{Kind: "remove", Identity: identity(p.Removed)}
		case *wire.SelfRemove:
			w = WaitingChange{Kind: "leave", Identity: by}
		default:
			continue // key updates and the rest are the group's own business
		}
		if w.Identity == "" || by == "" {
			continue
		}
		w.By = by
		out = append(out, w)
	}
	return out
}

// waitingIntents returns the membership changes this member asked for
// that no epoch of the canonical chain shows yet (see Waiting).
func (l *Loop) waitingIntents() []WaitingChange {
	var out []WaitingChange
	l.walkIntents(func(in *intent, done *Node, _ bool) {
		if done != nil {
			return
		}
		var kind string
		switch in.kind {
		case intentAdd:
			kind = "add"
		case intentRemove:
			kind = "remove"
		case intentLeave:
			kind = "leave"
		default:
			return // a key update is the group's own business
		}
		out = append(out, WaitingChange{Kind: kind, Identity: l.target(in), Asked: in.asked})
	})
	return out
}

// intentDone reports whether the state already shows the intent's effect.
func (l *Loop) intentDone(in *intent, st *group.State) bool {
	t := st.Tree()
	switch in.kind {
	case intentAdd:
		_, ok := t.FindSignatureKey(in.kp.LeafNode.SignatureKey)
		return ok
	case intentRemove:
		_, ok := l.findMember(st, in.identity)
		return !ok
	case intentUpdate:
		return !bytes.Equal(t.Leaf(st.OwnLeaf()).EncryptionKey, in.baseKey)
	case intentLeave:
		return t.Leaf(st.OwnLeaf()) == nil
	}
	return true
}

func (l *Loop) findMember(st *group.State, identity string) (group.LeafIndex, bool) {
	for _, m := range st.Members() {
		if Identity(m.LeafNode) == identity {
			return m.Leaf, true
		}
	}
	return 0, false
}

// target names what an intent changes: the member it adds or removes,
// or this member for an update or a departure. Intents on one target take
// effect in the order they were asked.
func (l *Loop) target(in *intent) string {
	switch in.kind {
	case intentAdd:
		return Identity(&in.kp.LeafNode)
	case intentRemove:
		return in.identity
	}
	return l.self
}

// doneAt returns the oldest epoch on the canonical chain, numbered from
// from (and from the intent's own epoch) on, whose state shows the
// intent's effect, or nil. An intent done once is not redone when a later
// commit reverses it (a member removed and added again by someone else
// stays added); it is redone only when the epoch that did it loses.
func (l *Loop) doneAt(in *intent, from uint64) *Node {
	var done *Node
	for n := l.tip; n != nil && n.Number >= max(in.since, from); n = n.parent {
		info := l.epochs[n.ID]
		if info == nil || info.state == nil || !l.intentDone(in, info.state) {
			continue
		}
		if in.kind == intentRemove && n.parent != nil {
			// A removal counts where it happens: the member is in the
			// parent epoch and not in this one (after a rollback it may
			// be absent only because it was not added yet). At the oldest
			// epoch held, absent is enough: the intent, made when the
			// member was there, predates it (or was carried over from a
			// history that started over there).
			p := n.parent
			if l.epochs[p.ID] == nil || l.epochs[p.ID].state == nil || l.intentDone(in, l.epochs[p.ID].state) {
				continue
			}
		}
		done = n
	}
	return done
}

// walkIntents calls fn with each intent, in the order asked, and the
// oldest epoch of the canonical chain that shows it done (nil if none).
// Intents on one target take effect in order: one is done only in an
// epoch after the one that did the intent before it, and none after an
// undone one counts as done. next is set for the first undone intent of
// each target: the one to carry out now.
func (l *Loop) walkIntents(fn func(in *intent, done *Node, next bool)) {
	after := map[string]uint64{}
	blocked := map[string]bool{}
	for _, in := range l.intents {
		t := l.target(in)
		var done *Node
		next := false
		if !blocked[t] {
			if done = l.doneAt(in, after[t]); done != nil {
				after[t] = done.Number + 1
			} else {
				blocked[t], next = true, true
			}
		}
		fn(in, done, next)
	}
}

// settleIntents drops the intents done in an epoch at or below root: a
// rollback can no longer undo them. It returns the intents still to carry
// out on the canonical chain: those not done whose earlier intents on the
// same target are done (an add, then a remove, of one member: the remove
// counts only after the add).
func (l *Loop) settleIntents(root *Node) []*intent {
	var keep, open []*intent
	l.walkIntents(func(in *intent, done *Node, next bool) {
		if next {
			open = append(open, in)
		}
		if done == nil || done.Number > root.Number {
			keep = append(keep, in)
		}
	})
	if len(keep) != len(l.intents) {
		l.intents = keep
		l.changes.touch()
	}
	return open
}

// proposalFor returns the MLS proposal that carries an intent in st, or
// nil if there is nothing to do.
func (l *Loop) proposalFor(in *intent, st *group.State) wire.Proposal {
	switch in.kind {
	case intentAdd:
		// With the client's key in the tree the Add would be invalid
		// (§12.2); it is done, or waits for a later epoch to show it.
		if !l.intentDone(in, st) {
			return &wire.Add{KeyPackage: *in.kp}
		}
	case intentRemove:
		if leaf, ok := l.findMember(st, in.identity); ok {
			return &wire.Remove{Removed: uint32(leaf)}
		}
	case intentUpdate:
		return &wire.Update{}
	case intentLeave:
		// SelfRemove (draft-ietf-mls-extensions) where every member
		// supports it, which any other member may commit; else a Remove
		// of this member's own leaf, which does the same.
		if st.SelfRemoveCapable() {
			return &wire.SelfRemove{}
		}
		return &wire.Remove{Removed: uint32(st.OwnLeaf())}
	}
	return nil
}

// committerRank is this member's place in the epoch's committer order: the
// members sorted by a hash of the epoch id and their identity.
func (l *Loop) committerRank(n *Node) int {
	if n.rank == 0 {
		n.rank = committerRank(n, l.self) + 1
	}
	return n.rank - 1
}

// committerRank is the place of self among the members of n sorted by the
// hash of n's id and their identity: the number of members whose hash is
// lower (len(n.Members) if self is not one).
func committerRank(n *Node, self string) int {
	if !n.hasMember(self) {
		return len(n.Members)
	}
	hash := func(m string) [32]byte {
		return sha256.Sum256(append(append(make([]byte, 0, len(n.ID)+len(m)), n.ID[:]...), m...))
	}
	own := hash(self)
	rank := 0
	for _, m := range n.Members {
		if h := hash(m); bytes.Compare(h[:], own[:]) < 0 {
			rank++
		}
	}
	return rank
}

// maybeCommit commits pending work on the canonical epoch when this
// member's turn has come, and otherwise proposes its own intents so that
// the preferred committer includes them.
func (l *Loop) maybeCommit() {
	info := l.epochs[l.tip.ID]
	if l.removed || info == nil || info.state == nil || info.committed {
		return
	}
	st := info.state
	// An intent is kept until the epoch that did it is depth-final: a
	// branch that shows it may still lose.
	open := l.settleIntents(l.graph.Root())
	if len(open) == 0 && st.PendingProposals() == 0 {
		return
	}
	if info.stuck != (pendingWork{}) && info.stuck == l.pendingWork(st) {
		return
	}
	info.stuck = pendingWork{}
	if info.pendSeen.IsZero() {
		info.pendSeen = l.now
	}
	rank := l.committerRank(l.tip)
	deadline := info.pendSeen.Add(l.cfg.CommitDelay + l.cfg.CommitBackoff*time.Duration(rank))
	if l.now.Before(deadline) {
		if rank > 0 {
			l.proposeIntents(info, open)
		}
		return
	}
	l.commit(info, open)
}

// pendingWork is what a commit could carry: intents asked for here, and
// proposals cached in the epoch.
type pendingWork struct {
	intents   uint64 // the last intent's number
	proposals int
}

func (l *Loop) pendingWork(st *group.State) pendingWork {
	return pendingWork{intents: l.intentSeq, proposals: st.PendingProposals()}
}

// proposeIntents sends the intents not yet proposed in this epoch.
func (l *Loop) proposeIntents(info *epochInfo, open []*intent) {
	for _, in := range open {
		if in.proposedIn == info.node.ID {
			continue
		}
		p := l.proposalFor(in, info.state)
		if p == nil {
			continue
		}
		var msg []byte
		var err error
		if _, ok := p.(*wire.SelfRemove); ok {
			// A PublicMessage, as the draft requires: an external joiner
			// must be able to read it to commit it.
			msg, _, err = info.state.ProposeSelfRemove(nil)
		} else {
			msg, _, err = info.state.Propose(p, true, nil)
		}
		if err != nil {
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: fmt.Errorf("ordering: proposing: %w", err)})
			continue
		}
		in.proposedIn, in.proposedAt = info.node.ID, l.now
		// Saved at once: this member cannot decrypt its own proposal
		// from the log after a restart, and a commit may refer to it.
		info.dirty, info.savedAt = true, time.Time{}
		l.stats.Proposals++
		l.attempt(in, info.node.ID)
		env := (&Envelope{Kind: KindHandshake, Epoch: info.node.ID, Payload: msg}).Encode()
		h := MessageHash(msg)
		l.seen[h] = struct{}{}
		l.logEnvelope(info, KindHandshake, env, h, MessageID{})
		l.out.Publish = append(l.out.Publish, env)
		l.changes.touch()
	}
}

// commit commits the epoch's pending proposals and this member's intents.
func (l *Loop) commit(info *epochInfo, open []*intent) {
	st := info.state
	opts := group.CommitOptions{IncludePending: true, MaxPendingPerSender: l.cfg.MaxProposalsPerSender, Encrypt: true, WelcomeWithTree: true}
	for _, in := range open {
		switch {
		case in.kind == intentLeave:
			// A member cannot commit its own removal; it proposes it.
			l.proposeIntents(info, []*intent{in})
		case in.kind == intentUpdate:
			opts.ForcePath = true // the path refreshes this member's leaf
		case in.proposedIn == info.node.ID:
			// Already proposed here: included by reference.
		default:
			if p := l.proposalFor(in, st); p != nil {
				opts.Proposals = append(opts.Proposals, p)
			}
		}
	}
	// Nothing to commit but, at most, this member's own departure, which
	// only another member can commit: an empty commit would only make a
	// new epoch in which the same happens again.
	if len(opts.Proposals) == 0 && !opts.ForcePath && st.PendingCommittable() == 0 {
		return
	}
	sc, err := st.Commit(opts)
	if err != nil {
		// A cached proposal may make the list invalid (this member's own
		// departure, which only another member can commit; an add whose
		// key is in the tree already): try with this member's own
		// changes only, if it has any, by value, those it proposed here
		// too (by reference they would go only with the whole cache). An
		// empty commit would only make a new epoch in which the same
		// happens again.
		opts.IncludePending = false
		for _, in := range open {
			if (in.kind == intentAdd || in.kind == intentRemove) && in.proposedIn == info.node.ID {
				if p := l.proposalFor(in, st); p != nil {
					opts.Proposals = append(opts.Proposals, p)
				}
			}
		}
		if len(opts.Proposals) == 0 && !opts.ForcePath {
			info.stuck = l.pendingWork(st)
			return
		}
		if sc, err = st.Commit(opts); err != nil {
			info.stuck = l.pendingWork(st)
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: fmt.Errorf("ordering: committing: %w", err)})
			return
		}
	}
	info.committed = true
	info.dirty = true
	for _, in := range open {
		if in.kind != intentLeave {
			l.attempt(in, info.node.ID)
		}
	}
	env := (&Envelope{Kind: KindHandshake, Epoch: info.node.ID, Payload: sc.Message}).Encode()
	l.seen[MessageHash(sc.Message)] = struct{}{}
	l.out.Publish = append(l.out.Publish, env)
	var welcomes []OutWelcome
	if sc.Welcome != nil {
		welcome := codec.MustMarshal(wire.NewMLSMessage(sc.Welcome))
		for _, added := range sc.Added {
			leaf := sc.State.Tree().Leaf(added)
			ref := []byte(nil)
			for _, ap := range sc.Proposals {
				if a, ok := ap.Proposal.(*wire.Add); ok && bytes.Equal(a.KeyPackage.LeafNode.SignatureKey, leaf.SignatureKey) {
					ref, _ = a.KeyPackage.Ref()
				}
			}
			welcomes = append(welcomes, OutWelcome{Identity: Identity(leaf), KeyPackageRef: ref, Welcome: welcome})
		}
	}
	if added := l.addEpoch(info, sc, env, wire.MemberSender(uint32(st.OwnLeaf()))); added != nil && l.graph.Get(added.node.ID) != nil {
		// The Welcomes go out once the epoch is final, so that a joiner
		// never joins a branch that loses.
		added.welcomes = welcomes // saved with Meta until they go out
		l.changes.touch()
		// Vote for the new epoch at once: the committer is on it.
		l.reconsider()
	}
}
