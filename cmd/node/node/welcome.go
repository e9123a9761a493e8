package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/p2p"
	"github.com/parley-p2p/parley/store"
	"golang.org/x/crypto/cryptobyte"
)

// A Welcome for a member this node added waits in the store (scope
// "welcome") until the joiner has it: the node pushes it over a direct
// stream when the joiner is reachable, and the joiner also asks the nodes
// it knows for Welcomes kept for it when it comes up.
const (
	scopeWelcome  = "welcome"
	welcomeMaxAge = 14 * 24 * time.Hour
)

type pendingWelcome struct {
	Identity string    `json:"identity"`
	Group    []byte    `json:"group"`
	Welcome  []byte    `json:"welcome"`
	Since    time.Time `json:"since"`
}

func welcomeKey(identity string, welcome []byte) string {
	h := sha256.Sum256(append([]byte(identity+"\x00"), welcome...))
	return hex.EncodeToString(h[:16])
}

// sendWelcomeSoon keeps a Welcome, gives it to the group's members
// connected now (any of them can then hand it to the joiner, who may know
// only the member that invited it), and tries to hand it over now.
func (n *Node) sendWelcomeSoon(identity string, gid, welcome []byte) {
	n.keepWelcome(identity, gid, welcome)
	n.goBackground(func() { n.shareWelcome(identity, gid, welcome) })
}

// keepWelcome stores a Welcome for a joiner and tries to hand it over.
func (n *Node) keepWelcome(identity string, gid, welcome []byte) {
	if p, _, err := ParseMemberID(identity); err == nil && p == n.id.PeerID {
		return // a Welcome for this node: it joins from its own copy
	}
	pw := pendingWelcome{Identity: identity, Group: gid, Welcome: welcome, Since: time.Now()}
	key := welcomeKey(identity, welcome)
	rec, _ := json.Marshal(pw)
	b := n.st.NewBatch()
	b.PutSetting(scopeWelcome, key, rec)
	if err := n.st.Write(context.Background(), b); err != nil {
		n.log.Error("keeping a Welcome", "for", identity, "err", err)
	}
	n.goBackground(func() { n.pushWelcome(key, pw) })
}

// pushWelcome hands a kept Welcome to its joiner; once the joiner has it,
// the node forgets it.
func (n *Node) pushWelcome(key string, pw pendingWelcome) bool {
	p, _, err := ParseMemberID(pw.Identity)
	if err != nil {
		n.log.Debug("a kept Welcome names no peer", "identity", pw.Identity, "err", err)
		return false
	}
	if !n.p2p.Connected(p) {
		if err := n.dial(n.ctx, p, n.p2p.PeerAddrs(p)); err != nil {
			n.log.Debug("joiner not reachable for its Welcome", "to", p.String(), "err", err)
			return false
		}
	}
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	if _, err := n.p2p.Request(ctx, p, protoWelcome, pw.Welcome); err != nil {
		if strings.Contains(err.Error(), errNotForMe.Error()) {
			// The joiner holds no KeyPackage for it any more: it joined
			// from another copy, or from a Welcome that replaced it.
			n.forgetWelcome(key)
			return false
		}
		n.log.Debug("Welcome not delivered yet", "to", p.String(), "err", err)
		return false
	}
	n.log.Debug("Welcome delivered", "to", p.String())
	n.forgetWelcome(key)
	return true
}

func (n *Node) forgetWelcome(key string) {
	b := n.st.NewBatch()
	b.DeleteSetting(scopeWelcome, key)
	if err := n.st.Write(context.Background(), b); err != nil {
		n.log.Warn("forgetting a delivered Welcome", "err", err)
	}
}

// welcomeLoop retries the kept Welcomes and asks known peers for Welcomes
// kept for this node.
func (n *Node) welcomeLoop() {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	asked := map[peer.ID]time.Time{}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		kept, err := n.st.Settings(n.ctx, scopeWelcome)
		if err != nil {
			continue
		}
		for key, rec := range kept {
			var pw pendingWelcome
			if json.Unmarshal(rec, &pw) != nil || time.Since(pw.Since) > welcomeMaxAge {
				n.forgetWelcome(key)
				continue
			}
			n.pushWelcome(key, pw)
		}
		for _, p := range n.p2p.Peers() {
			if time.Since(asked[p]) < 30*time.Second {
				continue
			}
			asked[p] = time.Now()
			n.fetchWelcomes(p)
		}
	}
}

// fetchWelcomes asks a peer for the Welcomes it keeps for this node.
func (n *Node) fetchWelcomes(p peer.ID) {
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	_ = n.p2p.RequestEach(ctx, p, protoWelcomes, nil, func(w []byte) error {
		if err := n.joinWelcome(ctx, w); err != nil && !errors.Is(err, errNotForMe) {
			n.log.Debug("fetched Welcome unusable", "from", p.String(), "err", err)
		}
		return nil
	})
}

// serveWelcomes gives a peer the Welcomes kept for it.
func (n *Node) serveWelcomes(ctx context.Context, from peer.ID, _ []byte, w p2p.ResponseWriter) error {
	kept, err := n.st.Settings(ctx, scopeWelcome)
	if err != nil {
		return err
	}
	for _, rec := range kept {
		var pw pendingWelcome
		if json.Unmarshal(rec, &pw) != nil {
			continue
		}
		if p, _, err := ParseMemberID(pw.Identity); err == nil && p == from {
			if err := w.Write(pw.Welcome); err != nil {
				return err
			}
		}
	}
	return nil
}

// serveWelcome takes a Welcome pushed by a member.
func (n *Node) serveWelcome(ctx context.Context, from peer.ID, req []byte, w p2p.ResponseWriter) error {
	if err := n.joinWelcome(ctx, req); err != nil && !errors.Is(err, errAlreadyIn) {
		return err
	}
	return w.Write([]byte("ok"))
}

var (
	errNotForMe  = errors.New("the Welcome is for none of this node's KeyPackages")
	errAlreadyIn = errors.New("already in the group")
)

// joinWelcome joins a group from a Welcome made for one of this node's
// KeyPackages. A Welcome for a group the node is already in goes to the
// group's loop, which keeps it in case its branch loses.
func (n *Node) joinWelcome(ctx context.Context, data []byte) error {
	var m wire.MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil || m.Welcome == nil {
		return fmt.Errorf("not a Welcome")
	}
	var ref, priv []byte
	for _, s := range m.Welcome.Secrets {
		if p, err := n.st.KeyPackage(ctx, s.NewMember); err == nil {
			ref, priv = s.NewMember, p
			break
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if ref == nil {
		return errNotForMe
	}
	bundle, err := n.decodeBundle(priv)
	if err != nil {
		return err
	}
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	arc := &archive{st: n.st}
	loop, out, err := ordering.Join(n.orderingConfig(arc), data, bundle, nil, time.Now())
	if err != nil {
		return err
	}
	gid := loop.GroupID()
	arc.gid = gid
	hexID := hex.EncodeToString(gid)
	if g := n.runner(hexID); g != nil && g.loop != nil && !g.status().Removed {
		_ = g.do(ctx, func() error {
			g.handle(ordering.WelcomeIn{Welcome: data})
			return nil
		})
		return errAlreadyIn
	}
	ext := loop.State().Extensions()
	secret, _ := ext.Find(extTopicSecret)
	name, _ := ext.Find(extGroupName)
	if len(secret) != 32 {
		return fmt.Errorf("the group has no Parley topic secret")
	}
	if old := n.runner(hexID); old != nil && (old.damaged != "" || old.status().Removed) {
		// The Welcome replaces the unreadable state, or that of a
		// membership that ended (this member was removed and is invited
		// back): the old runner stops first, saving what it saves when it
		// stops, then its ordering state is deleted, so that the new
		// membership starts afresh (its log would repeat envelopes of the
		// old one, and a restart would read both). The history stays.
		old.close()
		b := n.st.NewBatch()
		b.DeleteGroup(gid)
		if err := n.st.Write(ctx, b); err != nil {
			return err
		}
	}
	meta := groupMeta{Name: string(name), TopicSecret: secret, State: stateActive, Joined: time.Now(), Suite: uint16(loop.State().Suite())}
	g := n.newRunner(gid, meta, loop, newGroupStore(n.st, gid, n.retention()))
	rec, _ := json.Marshal(meta)
	err = g.persist(out, func(b *store.Batch) {
		b.PutSetting(scopeGroup, hexID, rec)
		if !bundle.LastResort() {
			b.DeleteKeyPackage(ref) // spent
		}
	})
	if err != nil {
		return err
	}
	if !bundle.LastResort() {
		bundle.InitKey.Destroy()
	}
	if old := n.runner(hexID); old != nil {
		old.close()
	}
	// The loop is the group goroutine's once it starts: read it before.
	epoch := loop.Tip().Number
	n.mu.Lock()
	n.groups[hexID] = g
	n.mu.Unlock()
	if err := g.start(); err != nil {
		return err
	}
	_ = g.do(ctx, func() error { g.apply(&ordering.Output{Publish: out.Publish, Requests: out.Requests}); return nil })
	n.log.Info("joined a group", "group", hexID[:8], "name", meta.Name, "epoch", epoch)
	info := g.status().Group
	n.broadcast(apiGroupEvent(info))
	return nil
}

// shareWelcome gives a Welcome to the group's connected members.
func (n *Node) shareWelcome(identity string, gid, welcome []byte) {
	g := n.runner(hex.EncodeToString(gid))
	if g == nil {
		return
	}
	joiner, _, _ := ParseMemberID(identity)
	g.mu.Lock()
	var members []peer.ID
	for p := range g.members {
		if p != n.id.PeerID && p != joiner {
			members = append(members, p)
		}
	}
	g.mu.Unlock()
	var b cryptobyte.Builder
	codec.AddOpaque(&b, gid)
	codec.AddOpaque(&b, []byte(identity))
	codec.AddOpaque(&b, welcome)
	req := b.BytesOrPanic()
	for _, p := range members {
		if !n.p2p.Connected(p) {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		if _, err := n.p2p.Request(ctx, p, protoWelcomeKeep, req); err != nil {
			n.log.Debug("sharing a Welcome", "with", p.String(), "err", err)
		}
		cancel()
	}
}

// maxWelcome bounds a Welcome kept for someone else.
const maxWelcome = 8 << 20

// serveWelcomeKeep keeps a Welcome a fellow member shares, to hand it to
// the joiner.
func (n *Node) serveWelcomeKeep(_ context.Context, from peer.ID, req []byte, w p2p.ResponseWriter) error {
	s := cryptobyte.String(req)
	var gid, identity, welcome []byte
	if !codec.ReadOpaque(&s, &gid) || !codec.ReadOpaque(&s, &identity) || !codec.ReadOpaque(&s, &welcome) || !s.Empty() ||
		len(welcome) > maxWelcome {
		return errors.New("malformed Welcome to keep")
	}
	g := n.runner(hex.EncodeToString(gid))
	if g == nil {
		return errors.New("unknown group")
	}
	g.mu.Lock()
	_, member := g.members[from]
	member = member || g.recent[from]
	g.mu.Unlock()
	if !member {
		return errors.New("not a member")
	}
	var m wire.MLSMessage
	if codec.Unmarshal(welcome, &m) != nil || m.Welcome == nil {
		return errors.New("not a Welcome")
	}
	if _, _, err := ParseMemberID(string(identity)); err != nil {
		return errors.New("bad joiner identity")
	}
	n.keepWelcome(string(identity), gid, welcome)
	return w.Write([]byte("ok"))
}
