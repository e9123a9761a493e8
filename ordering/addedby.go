package ordering

import (
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

// addedBy returns, for each member a commit adds, the member who asked
// for it: the Add's sender (RFC 9420 §12.1.1): for an Add by reference the
// sender of the proposal, which may be another member than the
// committer (a member proposes, the epoch's preferred committer commits);
// for an Add inline in the commit, the committer. Nil if the commit adds
// nobody, and nothing for an Add sent by a non-member (an external
// sender, or a joiner's own new_member_proposal), where the committer is
// the member who let it in (see Node.adder).
func addedBy(parent *group.State, sc *group.StagedCommit) map[string]string {
	if parent == nil {
		return nil // an epoch joined from outside (a rejoin): not known
	}
	var by map[string]string
	t := parent.Tree()
	for _, ap := range sc.Proposals {
		add, ok := ap.Proposal.(*wire.Add)
		if !ok || ap.Sender.Type != wire.SenderMember {
			continue
		}
		asker := t.Leaf(group.LeafIndex(ap.Sender.Index))
		if asker == nil {
			continue
		}
		if by == nil {
			by = map[string]string{}
		}
		by[Identity(&add.KeyPackage.LeafNode)] = Identity(asker)
	}
	return by
}

// adder is who added member m in epoch n: the member who proposed the Add
// where known, else the committer.
func (n *Node) adder(m string) string {
	if by, ok := n.AddedBy[m]; ok {
		return by
	}
	return n.Committer
}
