package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/p2p"
)

// Joins with an invite code made with approval (api.WithApproval) wait
// for this node's user: serveJoin spends the token and keeps the
// joiner's KeyPackage as a join request (scope "join_request", by a
// random id), tells the user with an event, and answers the joiner that
// it waits; Approve adds the joiner as an ordinary invite would, Deny
// drops the request. A code admits one request, so a stranger with a
// code costs one record. A code made with api.WithApprovalByMembers
// shares the request with the group instead (joinshare.go): the same
// records, marked Shared, at every member.

const scopeJoinRequest = "join_request"

// joinRequestReply is serveJoin's answer to a join that waits for the
// inviter's approval, joinRequestReplyMembers to one that waits for any
// member's ("ok" is the answer to one added at once). A joiner from
// before the second takes it for "ok": it waits all the same.
const (
	joinRequestReply        = "approval"
	joinRequestReplyMembers = "approval-members"
)

type joinRequestRecord struct {
	Group      string    `json:"group"` // hex id
	From       string    `json:"from"`  // the joiner's peer ID
	KeyPackage []byte    `json:"key_package"`
	At         time.Time `json:"at"`
	// Shared: any member decides (a code made WithApprovalByMembers);
	// Addrs are then the joiner's addresses, InvitedBy the inviter's name
	// (empty in the records from before: this node).
	Shared    bool     `json:"shared,omitempty"`
	Addrs     []string `json:"addrs,omitempty"`
	InvitedBy string   `json:"invited_by,omitempty"`
}

// holdJoin keeps a join to g from peer from (its KeyPackage checked) as
// a join request and tells the user.
func (n *Node) holdJoin(ctx context.Context, g *groupRunner, from peer.ID, kp []byte, w p2p.ResponseWriter) error {
	id := make([]byte, 8)
	rand.Read(id)
	rec := joinRequestRecord{Group: g.hexID, From: from.String(), KeyPackage: kp, At: time.Now().UTC()}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b := n.st.NewBatch()
	b.PutSetting(scopeJoinRequest, hex.EncodeToString(id), raw)
	if err := n.st.Write(ctx, b); err != nil {
		return err
	}
	r := n.joinRequest(hex.EncodeToString(id), rec)
	n.log.Info("join request waits for approval", "group", g.hexID[:8], "name", r.Name, "from", from.String(), "request", r.ID)
	n.broadcast(api.Event{Type: api.EventJoinRequest, Group: g.hexID, JoinRequest: &r})
	return w.Write([]byte(joinRequestReply))
}

// joinRequest is the API's view of a stored request.
func (n *Node) joinRequest(id string, rec joinRequestRecord) api.JoinRequest {
	r := api.JoinRequest{ID: id, Group: rec.Group, PeerID: rec.From, At: rec.At, InvitedBy: rec.InvitedBy, ApproveBy: api.ApproveByInviter}
	if r.InvitedBy == "" {
		r.InvitedBy = n.id.Name
	}
	if rec.Shared {
		r.ApproveBy = api.ApproveByMembers
	}
	if g := n.runner(rec.Group); g != nil {
		r.GroupName = g.meta.Name
	}
	var m wire.MLSMessage
	if err := wireUnmarshal(rec.KeyPackage, &m); err == nil && m.KeyPackage != nil {
		_, r.Name, _ = ParseMemberID(string(m.KeyPackage.LeafNode.Credential.Identity))
		r.Fingerprint = Fingerprint(m.KeyPackage.LeafNode.SignatureKey)
	}
	return r
}

// JoinRequests implements api.Backend.
func (n *Node) JoinRequests(ctx context.Context) ([]api.JoinRequest, error) {
	recs, err := n.st.Settings(ctx, scopeJoinRequest)
	if err != nil {
		return nil, err
	}
	var out []api.JoinRequest
	for id, raw := range recs {
		var rec joinRequestRecord
		if json.Unmarshal(raw, &rec) != nil {
			n.log.Warn("join request unreadable; skipped", "request", id)
			continue
		}
		out = append(out, n.joinRequest(id, rec))
	}
	slices.SortFunc(out, func(a, b api.JoinRequest) int { return a.At.Compare(b.At) })
	return out, nil
}

// readJoinRequest reads the request id.
func (n *Node) readJoinRequest(ctx context.Context, id string) (joinRequestRecord, error) {
	raw, err := n.st.Setting(ctx, scopeJoinRequest, id)
	return parseJoinRequest(id, raw, err)
}

// takeJoinRequest reads and deletes the request id in one write, so
// that of an Approve and a Deny at once exactly one has it.
func (n *Node) takeJoinRequest(ctx context.Context, id string) (joinRequestRecord, error) {
	raw, err := n.st.TakeSetting(ctx, scopeJoinRequest, id)
	return parseJoinRequest(id, raw, err)
}

// parseJoinRequest decodes the record of request id as the store
// returned it (raw, err).
func parseJoinRequest(id string, raw []byte, err error) (joinRequestRecord, error) {
	var rec joinRequestRecord
	switch {
	case isNotFound(err):
		return rec, fmt.Errorf("%w: no join request %q; 'parley requests' lists them", api.ErrNotFound, id)
	case err != nil:
		return rec, err
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, fmt.Errorf("join request %q unreadable: %w", id, err)
	}
	return rec, nil
}

// Approve implements api.Backend: the joiner is added, by this node.
func (n *Node) Approve(ctx context.Context, id string) error {
	if rec, err := n.readJoinRequest(ctx, id); err != nil {
		return err
	} else if rec.Shared {
		return n.decideShared(ctx, id, rec, true)
	}
	rec, err := n.takeJoinRequest(ctx, id)
	if err != nil {
		return err
	}
	g, err := n.activeGroup(rec.Group)
	if err != nil {
		return err
	}
	from, err := peer.Decode(rec.From)
	if err != nil {
		return fmt.Errorf("join request %q: %w", id, err)
	}
	if g.isMemberPeer(from) {
		return fmt.Errorf("%w: the joiner of request %q is a member of %q already", api.ErrExists, id, g.meta.Name)
	}
	// The KeyPackage was valid when it came; it may have expired since.
	if err := n.checkKeyPackage(rec.KeyPackage, from, g.suite()); err != nil {
		return fmt.Errorf("%w: the joiner's KeyPackage is no longer valid (%v); ask them for a new invite", api.ErrInvalid, err)
	}
	if err := g.addMember(ctx, rec.KeyPackage, n.id.Name); err != nil {
		return err
	}
	n.log.Info("join request approved", "group", g.hexID[:8], "request", id, "from", rec.From)
	return nil
}

// Deny implements api.Backend.
func (n *Node) Deny(ctx context.Context, id string) error {
	if rec, err := n.readJoinRequest(ctx, id); err != nil {
		return err
	} else if rec.Shared {
		return n.decideShared(ctx, id, rec, false)
	}
	rec, err := n.takeJoinRequest(ctx, id)
	if err != nil {
		return err
	}
	n.log.Info("join request denied", "group", rec.Group[:min(8, len(rec.Group))], "request", id, "from", rec.From)
	return nil
}
