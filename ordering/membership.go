package ordering

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/parley-p2p/parley/mls/group"
)

// Who may ask and be asked (DESIGN.md, "Threat model"). Nothing of a group
// goes to a peer that has not proven it is a member of an epoch this
// member holds, and no work is spent on one: gossip from an author that
// is a member of no held epoch is dropped (and refused where it names an
// epoch held here), never buffered, never answered with a catch-up
// request; a catch-up request is served only when it is signed by such a
// member, names that member as the requester (the caller checks it is the
// authenticated peer of the stream), names this member as the responder,
// and is fresh.

// syncFreshness is how far a catch-up request's time may lie from the
// responder's clock. Requests are bound to both peers, so a replay is only
// the requester's own; the window keeps one from living on.
const syncFreshness = 10 * time.Minute

// Verdict is what a member made of one gossip envelope, for the transport's
// validator: an accepted envelope is forwarded, an ignored one dropped
// quietly, a refused one dropped and counted against the peer that sent it.
type Verdict uint8

// Verdicts.
const (
	// VerdictAccept: the envelope was processed, buffered, or is a copy
	// of one seen; forward it.
	VerdictAccept Verdict = iota
	// VerdictIgnore: its author is a member of no epoch held here and it
	// names an epoch not held here: this member may just be behind.
	VerdictIgnore
	// VerdictReject: it does not decode or authenticate, or its author
	// cannot be a member of the epoch it names.
	VerdictReject
)

func (v Verdict) String() string {
	switch v {
	case VerdictAccept:
		return "accept"
	case VerdictIgnore:
		return "ignore"
	case VerdictReject:
		return "reject"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// IsMember reports whether identity is a member of an epoch this member
// holds (any branch, any retained epoch, opaque ones included: a member
// removed on a branch is still a member of the epochs before it).
func (l *Loop) IsMember(identity string) bool {
	if identity == "" {
		return false
	}
	if identity == l.self {
		return true
	}
	for _, info := range l.epochs {
		if info.node.hasMember(identity) {
			return true
		}
	}
	return false
}

// Members returns the identities that are members of an epoch this member
// holds: the peers it may ask and answer.
func (l *Loop) Members() []string {
	seen := map[string]bool{}
	var out []string
	for _, info := range l.epochs {
		for _, m := range info.node.Members {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// gossip handles an envelope from the group's topic whose author (the
// peer that signed it for the transport) is from.
func (l *Loop) gossip(from string, data []byte) {
	l.gossipFrom, l.verdict = from, VerdictAccept
	defer func() { l.gossipFrom = "" }()
	if from == l.self {
		return // an echo of this member's own envelope
	}
	if !l.IsMember(from) {
		env, err := DecodeEnvelope(data)
		switch {
		case err != nil:
			l.reject(from, err)
		case l.epochs[env.Epoch] != nil:
			// It names an epoch held here, whose members it is not
			// among: no honest peer sends that.
			l.reject(from, fmt.Errorf("%w: %s envelope in epoch %d from a non-member", ErrNotMember, env.Kind, l.epochs[env.Epoch].node.Number))
		default:
			// An epoch not held here: the author may be a member added
			// since. Nothing is kept or answered; if this member is
			// behind, the members it knows tell it.
			l.verdict = VerdictIgnore
			l.stats.Ignored++
		}
		return
	}
	l.inbound(from, data)
}

// authenticate checks a catch-up request before anything is served: it
// names from as its requester and this member as its responder, its time
// is within syncFreshness of this member's clock, and it is signed by the
// requester's leaf in an epoch held here.
func (l *Loop) authenticate(from string, req *syncRequest) error {
	switch {
	case req.requester != from:
		return fmt.Errorf("%w: requester %q is not the peer that asked", ErrUnauthenticated, req.requester)
	case req.responder != l.self:
		return fmt.Errorf("%w: request made for another member", ErrUnauthenticated)
	}
	if d := l.now.Sub(time.UnixMilli(int64(req.time))); d > syncFreshness || d < -syncFreshness {
		return fmt.Errorf("%w: request time %v off this member's clock", ErrStaleRequest, d.Round(time.Second))
	}
	info := l.signerEpoch(req)
	if info == nil {
		return fmt.Errorf("%w: requester is not a member of an epoch held here", ErrUnauthenticated)
	}
	st := info.state
	if err := st.Suite().VerifyWithLabelRepeated(req.signatureKey, syncLabel, req.tbs(), req.signature); err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return nil
}

// signerEpoch returns an epoch held here in which the request's signature
// key is the key of a leaf of the requester: the epochs the requester says
// it holds first, then the tip, then any.
func (l *Loop) signerEpoch(req *syncRequest) *epochInfo {
	try := func(info *epochInfo) bool {
		if info == nil || info.state == nil || !info.node.hasMember(req.requester) {
			return false
		}
		li, ok := info.state.Tree().FindSignatureKey(req.signatureKey)
		return ok && Identity(info.state.Tree().Leaf(li)) == req.requester
	}
	for _, id := range req.have {
		if info := l.epochs[id]; try(info) {
			return info
		}
	}
	if info := l.epochs[l.tip.ID]; try(info) {
		return info
	}
	for _, info := range l.epochs {
		if try(info) {
			return info
		}
	}
	return nil
}

// buffer keeps a message for an epoch not known yet, from a member of an
// epoch held here, and asks that member for catch-up. What is kept is
// bounded in count and bytes for the group and in bytes per sender; past
// a bound the oldest envelope of the sender holding the most goes, so a
// flood pushes out its own sender's envelopes first.
func (l *Loop) buffer(from string, env *Envelope, data []byte) {
	if len(data) > l.cfg.MaxBufferedPerSender {
		return
	}
	// One copy is enough, and a copy that came again (with a catch-up
	// answer that pages the same log) is no progress.
	for _, b := range l.buffered {
		if len(b.data) == len(data) && bytes.Equal(b.data, data) {
			return
		}
	}
	if l.bufferedBy == nil {
		l.bufferedBy = map[string]int{}
	}
	l.evictBuffered(from, len(data))
	l.buffered = append(l.buffered, bufferedEnvelope{from: from, env: env, data: data, viaSync: l.viaSync})
	l.bufferedBytes += len(data)
	l.bufferedBy[from] += len(data)
	l.askSync(from)
}

// evictBuffered makes room for size bytes from sender.
func (l *Loop) evictBuffered(sender string, size int) {
	for len(l.buffered) > 0 {
		victim := ""
		switch {
		case l.bufferedBy[sender]+size > l.cfg.MaxBufferedPerSender:
			victim = sender
		case l.bufferedBytes+size > l.cfg.MaxBufferedBytes || len(l.buffered) >= l.cfg.MaxBuffered:
			for s, n := range l.bufferedBy {
				if victim == "" || n > l.bufferedBy[victim] || (n == l.bufferedBy[victim] && s < victim) {
					victim = s
				}
			}
		default:
			return
		}
		for i, b := range l.buffered {
			if b.from == victim {
				l.dropBuffered(i)
				break
			}
		}
	}
}

// dropBuffered removes the i-th buffered envelope.
func (l *Loop) dropBuffered(i int) {
	b := l.buffered[i]
	l.buffered = append(l.buffered[:i], l.buffered[i+1:]...)
	l.bufferedBytes -= len(b.data)
	if l.bufferedBy[b.from] -= len(b.data); l.bufferedBy[b.from] <= 0 {
		delete(l.bufferedBy, b.from)
	}
	l.stats.Evicted++
}

// checkResync admits an external commit made on parent only as a member's
// resync of its own leaf, the one door besides a member's commit with a
// Welcome: it removes exactly one leaf (mls/group checks, RFC 9420
// §12.4.3.2, that a Remove in an external commit is of the joiner's own
// old leaf), so the members are those of parent; and that member has not
// been removed on this member's canonical chain after parent, when parent
// is on it, by an epoch that is final here. A peer that is not a member,
// or no longer one, cannot enter this way even with a GroupInfo.
//
// A removal not final yet is one commit among others: the member may have
// resynced before it heard of it (a removal re-issued after a partition
// races the removed member's rejoin on the same epoch). Refused here and
// taken in by members that saw it first, the resync would leave the
// members with different graphs, those that refused it unable to follow
// its branch if it won; kept, it is a sibling that the fork choice
// decides, as a commit of any member of parent is.
func (l *Loop) checkResync(parent *epochInfo, sc *group.StagedCommit) error {
	if len(sc.Removed) != 1 {
		return fmt.Errorf("%w: it removes %d leaves", ErrExternalCommit, len(sc.Removed))
	}
	leaf := parent.state.Tree().Leaf(sc.Removed[0])
	if leaf == nil {
		return fmt.Errorf("%w: it removes a blank leaf", ErrExternalCommit)
	}
	identity := Identity(leaf)
	switch {
	case sc.State == nil || sc.SelfRemoved:
		return fmt.Errorf("%w: it replaces this member's own leaf", ErrExternalCommit)
	case !slices.Equal(identities(sc.State), parent.node.Members):
		return fmt.Errorf("%w: the members after it differ from those before", ErrExternalCommit)
	case l.onCanonical(parent.node.ID) && l.removedFinal(parent.node, identity):
		// A member removed after parent on this member's chain would
		// fork its way back in. (On a branch this member does not follow,
		// the resync is one commit among others: refusing it there would
		// leave this member unable to follow that branch if it wins.)
		return fmt.Errorf("%w: %s was removed on the canonical chain", ErrExternalCommit, identity)
	}
	return nil
}

// removedFinal reports whether identity, a member of parent (an epoch on
// the canonical chain), was removed after it on the canonical chain by an
// epoch that is final here.
func (l *Loop) removedFinal(parent *Node, identity string) bool {
	for n := l.tip; n != nil && n != parent && n.parent != nil; n = n.parent {
		if info := l.epochs[n.ID]; info != nil && info.final && !n.hasMember(identity) && n.parent.hasMember(identity) {
			return true
		}
	}
	return false
}
