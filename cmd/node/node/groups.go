package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/p2p"
	"github.com/parley-p2p/parley/store"
)

const peerstoreTTL = peerstore.PermanentAddrTTL

// loadGroups restores every group the node is in. A group whose saved
// state cannot be read is not dropped: it is listed as damaged (see
// forget.go), with no loop, and the other groups run as usual.
func (n *Node) loadGroups(ctx context.Context) error {
	metas, unreadable, err := n.groupRecords(ctx)
	if err != nil {
		return err
	}
	for hexID, raw := range metas {
		var meta groupMeta
		gid, err := hex.DecodeString(hexID)
		if err != nil || len(gid) < 4 {
			n.log.Error("a group record under a key that is no group id; skipped", "key", hexID)
			continue
		}
		var loop *ordering.Loop
		var damaged string
		gs := newGroupStore(n.st, gid, n.retention())
		switch {
		case unreadable[hexID] != nil:
			damaged = damageRecord
			meta.Name = hexID[:8]
			n.log.Error("group record unreadable; the group is listed as damaged", "group", hexID[:8], "err", unreadable[hexID])
		case json.Unmarshal(raw, &meta) != nil:
			damaged = damageRecord
			meta = groupMeta{Name: hexID[:8]}
			n.log.Error("group record unreadable; the group is listed as damaged", "group", hexID[:8])
		case meta.State != statePending:
			if loop, err = n.restoreLoop(ctx, gid, gs); err != nil {
				damaged = damageReason(err)
				n.log.Error("group state unreadable; the group is listed as damaged", "group", hexID[:8], "name", meta.Name, "err", err)
			}
		}
		g := n.newRunner(gid, meta, loop, gs)
		g.damaged = damaged
		n.mu.Lock()
		n.groups[hexID] = g
		n.mu.Unlock()
		if err := g.start(); err != nil {
			return err
		}
	}
	return nil
}

// restoreLoop reads a group's saved ordering state and restores its loop.
func (n *Node) restoreLoop(ctx context.Context, gid []byte, gs *groupStore) (*ordering.Loop, error) {
	saved, err := gs.load(ctx)
	if err != nil {
		return nil, err
	}
	return ordering.Restore(n.orderingConfig(&archive{st: n.st, gid: gid}), saved, time.Now())
}

// findGroup finds a group by hex id (or a unique prefix of at least 8
// digits) or by name.
func (n *Node) findGroup(ref string) (*groupRunner, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if g := n.groups[ref]; g != nil {
		return g, nil
	}
	var found []*groupRunner
	for hexID, g := range n.groups {
		if g.meta.Name == ref || len(ref) >= 8 && strings.HasPrefix(hexID, strings.ToLower(ref)) {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no group %q; 'parley groups' lists yours", api.ErrNotFound, ref)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %d groups are named %q; use the group id", api.ErrAmbiguous, len(found), ref)
}

// activeGroup finds a group this node is a member of.
func (n *Node) activeGroup(ref string) (*groupRunner, error) {
	g, err := n.findGroup(ref)
	if err != nil {
		return nil, err
	}
	if g.damaged != "" {
		return nil, g.damagedError()
	}
	if g.loop == nil {
		return nil, fmt.Errorf("%w: still waiting to be let into %q", api.ErrNotMember, g.meta.Name)
	}
	if g.status().Removed {
		return nil, fmt.Errorf("%w: you are no longer in %q", api.ErrNotMember, g.meta.Name)
	}
	return g, nil
}

// CreateGroup implements api.Backend: the group is in DefaultSuite unless
// the options pick another of Suites.
func (n *Node) CreateGroup(ctx context.Context, name string, opts ...api.GroupOption) (api.Group, error) {
	if err := CheckName(name); err != nil {
		return api.Group{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	cs := DefaultSuite
	if s := api.NewGroupSettings(opts...).Suite; s != "" {
		var err error
		if cs, err = ParseSuite(s); err != nil {
			return api.Group{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
		}
	}
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	n.mu.Lock()
	for _, g := range n.groups {
		if g.meta.Name == name && !g.status().Removed {
			n.mu.Unlock()
			return api.Group{}, fmt.Errorf("%w: you have a group named %q", api.ErrExists, name)
		}
	}
	n.mu.Unlock()
	gid := make([]byte, 32)
	secret := make([]byte, 32)
	if _, err := rand.Read(gid); err != nil {
		return api.Group{}, err
	}
	if _, err := rand.Read(secret); err != nil {
		return api.Group{}, err
	}
	b := n.st.NewBatch()
	bundle, err := n.newKeyPackage(b, cs, false)
	if err != nil {
		return api.Group{}, err
	}
	ext := wire.Extensions{{Type: extTopicSecret, Data: secret}, {Type: extGroupName, Data: []byte(name)}}
	loop, out, err := ordering.CreateWith(n.orderingConfig(&archive{st: n.st, gid: gid}), gid, ext, bundle, time.Now())
	if err != nil {
		return api.Group{}, err
	}
	hexID := hex.EncodeToString(gid)
	meta := groupMeta{Name: name, TopicSecret: secret, State: stateActive, Joined: time.Now(), Suite: uint16(cs)}
	g := n.newRunner(gid, meta, loop, newGroupStore(n.st, gid, n.retention()))
	rec, _ := json.Marshal(meta)
	if err := g.persist(out, func(b *store.Batch) { b.PutSetting(scopeGroup, hexID, rec) }); err != nil {
		return api.Group{}, err
	}
	n.mu.Lock()
	n.groups[hexID] = g
	n.mu.Unlock()
	if err := g.start(); err != nil {
		return api.Group{}, err
	}
	_ = g.do(ctx, func() error { g.apply(&ordering.Output{Publish: out.Publish}); return nil })
	n.log.Info("group created", "group", hexID[:8], "name", name, "suite", fmt.Sprintf("0x%04x", uint16(cs)))
	info := g.status().Group
	n.broadcast(apiGroupEvent(info))
	return info, nil
}

func apiGroupEvent(g api.Group) api.Event {
	return api.Event{Type: api.EventGroup, Group: g.ID, GroupInfo: &g}
}

// Groups implements api.Backend.
func (n *Node) Groups(context.Context) ([]api.Group, error) {
	n.mu.Lock()
	out := make([]api.Group, 0, len(n.groups))
	for _, g := range n.groups {
		out = append(out, g.status().Group)
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Members implements api.Backend.
func (n *Node) Members(ctx context.Context, ref string) ([]api.Member, error) {
	g, err := n.findGroup(ref)
	if err != nil {
		return nil, err
	}
	if g.damaged != "" {
		return nil, g.damagedError()
	}
	if g.loop == nil {
		return nil, fmt.Errorf("%w: still waiting to be let into %q", api.ErrNotMember, g.meta.Name)
	}
	var out []api.Member
	err = g.do(ctx, func() error {
		st := g.loop.State()
		if st == nil {
			return fmt.Errorf("%w: you are no longer in %q", api.ErrNotMember, g.meta.Name)
		}
		addedBy := g.addedBy()
		for _, m := range st.Members() {
			id := ordering.Identity(m.LeafNode)
			p, name, _ := ParseMemberID(id)
			mb := api.Member{
				Name: name, PeerID: p.String(), Fingerprint: Fingerprint(m.LeafNode.SignatureKey),
				AddedBy: addedBy[id], Self: p == n.id.PeerID, Online: true,
			}
			if !mb.Self {
				mb.Online, mb.Via = n.peerPath(p)
			}
			out = append(out, mb)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Invite implements api.Backend.
func (n *Node) Invite(ctx context.Context, ref, contactRef string) error {
	g, err := n.activeGroup(ref)
	if err != nil {
		return err
	}
	c, err := n.findContact(contactRef)
	if err != nil {
		return err
	}
	if err := g.do(ctx, func() error {
		for _, m := range g.loop.Tip().Members {
			if p, _, _ := ParseMemberID(m); p == c.peerID {
				return fmt.Errorf("%w: %s is already a member of %q", api.ErrExists, c.name, g.meta.Name)
			}
		}
		// Asked before the KeyPackage is fetched: a second one would be
		// spent for nothing (the loop refuses a second add too).
		for _, m := range g.loop.Adding() {
			if p, _, _ := ParseMemberID(m); p == c.peerID {
				return fmt.Errorf("%w: your invite of %s to %q is on its way", api.ErrExists, c.name, g.meta.Name)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	kp, err := n.keyPackageOf(ctx, c, g.suite())
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	return g.addMember(ctx, kp, n.id.Name)
}

// addMember asks the group's loop to add the owner of a KeyPackage, and
// records who asked.
func (g *groupRunner) addMember(ctx context.Context, kp []byte, by string) error {
	return g.do(ctx, func() error { return g.addMemberNow(kp, by) })
}

// addMemberNow is addMember on the group's goroutine.
func (g *groupRunner) addMemberNow(kp []byte, by string) error {
	out := g.handle(ordering.AddMember{KeyPackage: kp})
	for _, no := range out.Notices {
		if no.Kind == ordering.NoticeRejected && no.Err != nil {
			if errors.Is(no.Err, ordering.ErrAlreadyMember) {
				return fmt.Errorf("%w: %v", api.ErrExists, no.Err)
			}
			return fmt.Errorf("%w: %v", api.ErrInvalid, no.Err)
		}
	}
	var m wire.MLSMessage
	if err := wireUnmarshal(kp, &m); err == nil && m.KeyPackage != nil {
		g.noteAddedBy(ordering.Identity(&m.KeyPackage.LeafNode), by)
	}
	g.refresh() // the status shows the add waiting
	return nil
}

// InviteCode implements api.Backend: a one-use token the inviting node
// keeps for 7 days, with its addresses; with api.WithApproval, the join
// it admits waits for this node's user (see approval.go), with
// api.WithApprovalByMembers for any member's (see joinshare.go).
func (n *Node) InviteCode(ctx context.Context, ref string, opts ...api.InviteOption) (string, error) {
	g, err := n.activeGroup(ref)
	if err != nil {
		return "", err
	}
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return "", err
	}
	set := api.NewInviteSettings(opts...)
	rec, err := json.Marshal(inviteRecord{Group: g.hexID, Expires: time.Now().Add(7 * 24 * time.Hour), Approve: set.Approve, ByMembers: set.Approve && set.ByMembers})
	if err != nil {
		return "", err
	}
	b := n.st.NewBatch()
	b.PutSetting(scopeInvite, hex.EncodeToString(token), rec)
	if err := n.st.Write(ctx, b); err != nil {
		return "", err
	}
	c := &inviteCode{GroupID: g.gid, GroupName: g.meta.Name, PeerID: n.id.PeerID, Addrs: n.p2p.AddrInfo().Addrs, Token: token, Suite: g.suite()}
	return c.String(), nil
}

const scopeInvite = "invite"

type inviteRecord struct {
	Group   string    `json:"group"`
	Expires time.Time `json:"expires"`
	// Approve: the join waits for this node's user (a join request);
	// with ByMembers, for any member's (the request goes to the group).
	Approve   bool `json:"approve,omitempty"`
	ByMembers bool `json:"by_members,omitempty"`
}

// Join implements api.Backend: it hands a KeyPackage and the token to the
// inviting member, who adds this node; the group is pending until the
// Welcome arrives.
func (n *Node) Join(ctx context.Context, code string) (api.Group, error) {
	c, err := parseInviteCode(code)
	if err != nil {
		return api.Group{}, err
	}
	hexID := hex.EncodeToString(c.GroupID)
	if g := n.runner(hexID); g != nil && g.loop != nil && !g.status().Removed {
		return g.status().Group, fmt.Errorf("%w: you are in %q already", api.ErrExists, g.meta.Name)
	}
	n.p2p.AddPeerAddrs(c.PeerID, c.Addrs, peerstoreTTL)
	if err := n.dial(ctx, c.PeerID, c.Addrs); err != nil {
		return api.Group{}, fmt.Errorf("%w: cannot reach the inviting member: %v", api.ErrUnavailable, err)
	}
	b := n.st.NewBatch()
	bundle, err := n.newKeyPackage(b, c.Suite, false) // parseInviteCode checked the suite
	if err != nil {
		return api.Group{}, err
	}
	meta := groupMeta{Name: c.GroupName, State: statePending, Joined: time.Now(), Inviter: c.PeerID.String(), Suite: uint16(c.Suite)}
	rec, _ := json.Marshal(meta)
	damaged := n.runner(hexID)
	if damaged != nil && damaged.damaged == "" {
		damaged = nil
	}
	if damaged != nil {
		// Joining again replaces the unreadable state; the history stays.
		b.DeleteGroup(c.GroupID)
	}
	b.PutSetting(scopeGroup, hexID, rec)
	if err := n.st.Write(ctx, b); err != nil {
		return api.Group{}, err
	}
	if damaged != nil {
		damaged.close()
		g := n.newRunner(c.GroupID, meta, nil, newGroupStore(n.st, c.GroupID, n.retention()))
		n.mu.Lock()
		n.groups[hexID] = g
		n.mu.Unlock()
		if err := g.start(); err != nil {
			return api.Group{}, err
		}
	}
	req := append(append([]byte(nil), c.Token...), kpMessage(bundle)...)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	reply, err := n.p2p.Request(rctx, c.PeerID, protoJoin, req)
	if err != nil {
		var re *p2p.RemoteError
		if errors.As(err, &re) {
			if damaged == nil && n.runner(hexID) == nil {
				// Refused: nothing will come of this join, so the
				// pending group and its KeyPackage go (they would show
				// as pending forever after a restart).
				undo := n.st.NewBatch()
				undo.DeleteSetting(scopeGroup, hexID)
				undo.DeleteKeyPackage(bundle.Ref())
				if werr := n.st.Write(ctx, undo); werr != nil {
					n.log.Warn("forgetting a refused join", "group", hexID[:8], "err", werr)
				}
			}
			return api.Group{}, fmt.Errorf("%w: the inviting member refused: %s", api.ErrBadCode, re.Message)
		}
		return api.Group{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	switch string(reply) {
	case joinRequestReply:
		meta.Approval = api.ApproveByInviter
		n.log.Info("the inviting member approves each join; waiting", "group", hexID[:8])
	case joinRequestReplyMembers:
		meta.Approval = api.ApproveByMembers
		n.log.Info("a member approves each join; waiting", "group", hexID[:8])
	}
	g := n.runner(hexID)
	if g != nil && meta.Approval != "" {
		// The runner of a damaged group joined again started before
		// the answer.
		if err := g.do(ctx, func() error {
			g.meta.Approval = meta.Approval
			g.saveMeta()
			g.refresh()
			return nil
		}); err != nil {
			return api.Group{}, err
		}
	}
	if g == nil {
		if meta.Approval != "" {
			b := n.st.NewBatch()
			rec, _ := json.Marshal(meta)
			b.PutSetting(scopeGroup, hexID, rec)
			if err := n.st.Write(ctx, b); err != nil {
				return api.Group{}, err
			}
		}
		g = n.newRunner(c.GroupID, meta, nil, newGroupStore(n.st, c.GroupID, n.retention()))
		n.mu.Lock()
		n.groups[hexID] = g
		n.mu.Unlock()
		if err := g.start(); err != nil {
			return api.Group{}, err
		}
	}
	return g.status().Group, nil
}

// serveJoin takes a stranger's KeyPackage with an invite token and adds it.
// The token is spent first, in one store transaction (takeInvite), so of
// two joins with one token exactly one gets in, and a peer without one
// costs no KeyPackage check.
func (n *Node) serveJoin(ctx context.Context, from peer.ID, req []byte, w p2p.ResponseWriter) error {
	if len(req) < 16 {
		return errors.New("malformed join request")
	}
	if err := n.refuseMemberJoin(ctx, req[:16], from); err != nil {
		return err
	}
	inv, err := n.takeInvite(ctx, req[:16], time.Now())
	if err != nil {
		return err
	}
	kp := req[16:]
	g, err := n.activeGroup(inv.Group)
	if err != nil {
		return errors.New("the group is gone")
	}
	if err := n.checkKeyPackage(kp, from, g.suite()); err != nil {
		return fmt.Errorf("bad KeyPackage: %v", err)
	}
	switch {
	case inv.Approve && inv.ByMembers:
		return n.shareJoin(ctx, g, from, kp, w)
	case inv.Approve:
		return n.holdJoin(ctx, g, from, kp, w)
	}
	if err := g.addMember(ctx, kp, n.id.Name); err != nil {
		return err
	}
	return w.Write([]byte("ok"))
}

// errJoinedAlready refuses a join with an invite code from a peer that is
// a member of the group: its node forgot the group (group forget --force,
// or a store restored from before it joined), and an add of a second leaf
// of the same identity cannot be committed (RFC 9420 §7.3: a signature key
// is unique in the tree), so it would wait for it forever.
var errJoinedAlready = errors.New("you are a member of this group already (your node has forgotten it): ask a member to remove you, then join with this code again")

// refuseMemberJoin refuses, without spending the code, a join by a member
// of the code's group.
func (n *Node) refuseMemberJoin(ctx context.Context, token []byte, from peer.ID) error {
	raw, err := n.st.Setting(ctx, scopeInvite, hex.EncodeToString(token))
	if err != nil {
		return nil // unknown: takeInvite says so
	}
	inv, ok := parseInvite(raw, time.Now())
	if !ok {
		return nil
	}
	g, err := n.activeGroup(inv.Group)
	if err != nil {
		return nil
	}
	if g.isMemberPeer(from) {
		return errJoinedAlready
	}
	return nil
}

// isMemberPeer reports whether the peer is a member of the canonical
// epoch.
func (g *groupRunner) isMemberPeer(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.members[p]
	return ok
}

// Remove implements api.Backend.
func (n *Node) Remove(ctx context.Context, ref, member string) error {
	g, err := n.activeGroup(ref)
	if err != nil {
		return err
	}
	return g.do(ctx, func() error {
		id, err := g.findMember(member)
		if err != nil {
			return err
		}
		if p, _, _ := ParseMemberID(id); p == n.id.PeerID {
			return fmt.Errorf("%w: to leave a group use 'parley leave'", api.ErrInvalid)
		}
		g.handle(ordering.RemoveMember{Identity: id})
		g.refresh() // the status shows the removal waiting
		return nil
	})
}

// findMember finds a member of the canonical epoch by name, peer ID or
// fingerprint (on the group's goroutine).
func (g *groupRunner) findMember(ref string) (string, error) {
	var found []string
	for _, m := range g.loop.Tip().Members {
		p, name, _ := ParseMemberID(m)
		if name == ref || p.String() == ref || strings.EqualFold(name, ref) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: no member %q in %q; 'parley members' lists them", api.ErrNotFound, ref, g.meta.Name)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%w: %d members are named %q; use the peer ID", api.ErrAmbiguous, len(found), ref)
}

// Leave implements api.Backend.
func (n *Node) Leave(ctx context.Context, ref string) error {
	g, err := n.activeGroup(ref)
	if err != nil {
		return err
	}
	return g.do(ctx, func() error {
		g.handle(ordering.Leave{})
		return nil
	})
}

// UpdateKeys has this member refresh its leaf in the group now (it also
// does on the UpdateInterval schedule).
func (n *Node) UpdateKeys(ctx context.Context, ref string) error {
	g, err := n.activeGroup(ref)
	if err != nil {
		return err
	}
	return g.do(ctx, func() error {
		g.handle(ordering.UpdateKeys{})
		return nil
	})
}

// EpochAuthenticator returns the group's current epoch and its
// epoch_authenticator (the value members compare to check they agree).
func (n *Node) EpochAuthenticator(ctx context.Context, ref string) (uint64, []byte, error) {
	g, err := n.activeGroup(ref)
	if err != nil {
		return 0, nil, err
	}
	var epoch uint64
	var auth []byte
	err = g.do(ctx, func() error {
		st := g.loop.State()
		if st == nil {
			return api.ErrNotMember
		}
		epoch, auth = st.Epoch(), append([]byte(nil), st.EpochAuthenticator()...)
		return nil
	})
	return epoch, auth, err
}
