package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/p2p"
	"github.com/parley-p2p/parley/store"
)

// Joins with an invite code made with api.WithApprovalByMembers wait for
// any member, not only the inviter. The inviting node spends the token
// as for any approval and sends the join request to the group
// (contentJoinRequest, joinwire.go) in the transaction that stores its
// own copy. Every member checks a request it receives in the transaction
// that records its delivery (the KeyPackage as the inviter checked it,
// the sender and the joiner against the members) and stores it as its
// own join request, marked shared, or rejects it with a log line.
//
// A member approving a shared request sends the decision to the group
// (contentJoinDecision) in the transaction that drops its copy, then adds
// the joiner as the inviter would; a denial sends the decision only. A
// decision from a member drops the copies; one that comes before its
// request leaves a mark (scope "join_decided", by group and request id,
// for joinMarkTTL) that drops the request when it comes. A commit adding
// the joiner, this member's removal and forgetting the group drop the
// copies too. Two members approving at once both add the same
// KeyPackage: the ordering layer commits it once (an add whose key is in
// the tree already is done, not redone).

const (
	scopeJoinDecided = "join_decided"
	// joinMarkTTL is how long a decision waits for its request.
	joinMarkTTL = 7 * 24 * time.Hour
	// maxSharedRequests bounds the shared requests kept per group (a
	// member flooding the group with requests costs this much).
	maxSharedRequests = 64
)

// maxJoinMarks bounds the marks of decisions that came before their
// request, per group: a member flooding the group with decisions on ids
// nobody holds costs this much (a variable for the tests).
var maxJoinMarks = 256

// joinMark is the value of a scopeJoinDecided setting.
type joinMark struct {
	Expires time.Time `json:"expires"`
}

func joinMarkKey(hexID, id string) string { return hexID + "|" + id }

// newJoinID is a random request id.
func newJoinID() ([joinIDLen]byte, error) {
	var id [joinIDLen]byte
	_, err := rand.Read(id[:])
	return id, err
}

// shareJoin keeps a join to g from peer from (its KeyPackage checked) as
// a join request and sends it to the group, so that any member may
// decide it, then tells the user and answers the joiner that it waits.
func (n *Node) shareJoin(ctx context.Context, g *groupRunner, from peer.ID, kp []byte, w p2p.ResponseWriter) error {
	id, err := newJoinID()
	if err != nil {
		return err
	}
	addrs := n.p2p.PeerAddrs(from)
	msg := joinRequestMsg{id: id, joiner: from, addrs: addrs[:min(len(addrs), maxJoinAddrs)], keyPackage: kp}
	body := msg.encode()
	if len(body) > maxJoinMessage {
		return fmt.Errorf("a KeyPackage of %d bytes is too large to share with the group", len(kp))
	}
	rec := joinRequestRecord{Group: g.hexID, From: from.String(), KeyPackage: kp, At: time.Now().UTC(),
		Addrs: addrStrings(msg.addrs), InvitedBy: n.id.Name, Shared: true}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	key := hex.EncodeToString(id[:])
	err = g.do(ctx, func() error {
		if g.tipHasPeer(from) {
			return errJoinedAlready
		}
		_, err := g.send(contentJoinRequest, body, func(b *store.Batch, _ string) { b.PutSetting(scopeJoinRequest, key, raw) })
		return err
	})
	if err != nil {
		return err
	}
	r := n.joinRequest(key, rec)
	n.log.Info("join request sent to the group; any member may approve it", "group", g.hexID[:8], "name", r.Name, "from", from.String(), "request", key)
	n.broadcast(api.Event{Type: api.EventJoinRequest, Group: g.hexID, JoinRequest: &r})
	return w.Write([]byte(joinRequestReplyMembers))
}

func addrStrings(addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// tipHasPeer reports whether a peer is a member of the canonical epoch
// (on the group's goroutine).
func (g *groupRunner) tipHasPeer(p peer.ID) bool {
	for _, m := range g.loop.Tip().Members {
		if q, _, err := ParseMemberID(m); err == nil && q == p {
			return true
		}
	}
	return false
}

// tipHasMember reports whether a member identity is of the canonical
// epoch (on the group's goroutine).
func (g *groupRunner) tipHasMember(identity string) bool {
	return slices.Contains(g.loop.Tip().Members, identity)
}

// joinShares are the effects of the join messages a write delivers:
// settings to put and delete in its transaction, and what to do once it
// is written.
type joinShares struct {
	puts  map[[2]string][]byte // by scope and key
	dels  map[[2]string]bool
	after []func()
	// requests are the request records put or deleted by this write (nil:
	// deleted), for the checks of the messages after them; marks the
	// marks it puts.
	requests map[string]*joinRequestRecord
	marks    map[string]bool
}

func (js *joinShares) put(scope, key string, value []byte) {
	delete(js.dels, [2]string{scope, key})
	js.puts[[2]string{scope, key}] = value
}

func (js *joinShares) del(scope, key string) {
	delete(js.puts, [2]string{scope, key})
	js.dels[[2]string{scope, key}] = true
}

// apply adds the settings to a write's batch.
func (js *joinShares) apply(b *store.Batch) {
	for k, v := range js.puts {
		b.PutSetting(k[0], k[1], v)
	}
	for k := range js.dels {
		b.DeleteSetting(k[0], k[1])
	}
}

// joinShares checks the join messages the outputs deliver, in order, and
// returns their effects (nil if they deliver none). Run on the group's
// goroutine, before the write.
func (g *groupRunner) joinShares(ctx context.Context, ps []*pendingWrite) *joinShares {
	var js *joinShares
	for _, p := range ps {
		for _, d := range p.out.Deliveries {
			if d.ContentType != contentJoinRequest && d.ContentType != contentJoinDecision {
				continue
			}
			if js == nil {
				js = &joinShares{puts: map[[2]string][]byte{}, dels: map[[2]string]bool{}, requests: map[string]*joinRequestRecord{}, marks: map[string]bool{}}
			}
			var err error
			if d.ContentType == contentJoinRequest {
				err = g.takeSharedRequest(ctx, js, d)
			} else {
				err = g.takeDecision(ctx, js, d)
			}
			if err != nil {
				g.n.log.Warn("join message rejected", "group", g.hexID[:8], "from", d.Sender, "msg_type", d.ContentType, "err", err)
			}
		}
	}
	return js
}

// Reasons a join message is rejected.
var (
	errJoinNotMember = errors.New("node: join message from a peer that is not a member")
	errJoinKnown     = errors.New("node: join request known or decided already")
	errJoinMember    = errors.New("node: join request of a member")
	errJoinTooMany   = errors.New("node: too many shared join requests, or decisions on requests not held, kept")
)

// heldRequest returns the request id as the store holds it after the
// messages before (nil if none), and whether that holds one.
func (g *groupRunner) heldRequest(ctx context.Context, js *joinShares, id string) (*joinRequestRecord, error) {
	if rec, ok := js.requests[id]; ok {
		return rec, nil
	}
	raw, err := g.n.st.Setting(ctx, scopeJoinRequest, id)
	switch {
	case isNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var rec joinRequestRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("join request %q unreadable: %w", id, err)
	}
	return &rec, nil
}

// marked reports whether a decision on request id of this group was seen.
func (g *groupRunner) marked(ctx context.Context, js *joinShares, id string) (bool, error) {
	key := joinMarkKey(g.hexID, id)
	if js.marks[key] {
		return true, nil
	}
	_, err := g.n.st.Setting(ctx, scopeJoinDecided, key)
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// takeSharedRequest checks a delivered join request and, if it is good,
// keeps it as this member's.
func (g *groupRunner) takeSharedRequest(ctx context.Context, js *joinShares, d ordering.Delivery) error {
	if !g.tipHasMember(d.Sender) {
		return errJoinNotMember
	}
	m, err := decodeJoinRequest(d.Body)
	if err != nil {
		return err
	}
	if err := g.n.checkKeyPackage(m.keyPackage, m.joiner, g.suite()); err != nil {
		return fmt.Errorf("%w: bad KeyPackage: %w", errBadJoinMessage, err)
	}
	id := hex.EncodeToString(m.id[:])
	if rec, err := g.heldRequest(ctx, js, id); err != nil || rec != nil {
		return errors.Join(errJoinKnown, err)
	}
	if _, deleted := js.requests[id]; deleted {
		return errJoinKnown
	}
	if seen, err := g.marked(ctx, js, id); err != nil || seen {
		return errors.Join(errJoinKnown, err)
	}
	if g.tipHasPeer(m.joiner) {
		return errJoinMember
	}
	if held, err := g.sharedRequests(ctx); err != nil || held+len(js.requests) >= maxSharedRequests {
		return errors.Join(errJoinTooMany, err)
	}
	_, inviter, _ := ParseMemberID(d.Sender)
	rec := joinRequestRecord{Group: g.hexID, From: m.joiner.String(), KeyPackage: m.keyPackage, At: time.Now().UTC(),
		Addrs: addrStrings(m.addrs), InvitedBy: inviter, Shared: true}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	js.put(scopeJoinRequest, id, raw)
	js.requests[id] = &rec
	js.after = append(js.after, func() {
		g.n.p2p.AddPeerAddrs(m.joiner, m.addrs, welcomeMaxAge) // for the Welcome, whoever commits
		r := g.n.joinRequest(id, rec)
		g.n.log.Info("join request shared by a member waits for approval", "group", g.hexID[:8], "name", r.Name, "from", rec.From, "by", inviter, "request", id)
		g.n.broadcast(api.Event{Type: api.EventJoinRequest, Group: g.hexID, JoinRequest: &r})
	})
	return nil
}

// takeDecision acts on a delivered decision: the request's copy goes,
// and a mark stays.
func (g *groupRunner) takeDecision(ctx context.Context, js *joinShares, d ordering.Delivery) error {
	if !g.tipHasMember(d.Sender) {
		return errJoinNotMember
	}
	m, err := decodeJoinDecision(d.Body)
	if err != nil {
		return err
	}
	id := hex.EncodeToString(m.id[:])
	rec, err := g.heldRequest(ctx, js, id)
	if err != nil {
		return err
	}
	key := joinMarkKey(g.hexID, id)
	if rec == nil || rec.Group != g.hexID {
		marks, err := g.n.st.Settings(ctx, scopeJoinDecided)
		if err != nil {
			return err
		}
		held := len(js.marks)
		for k := range marks {
			if strings.HasPrefix(k, g.hexID+"|") {
				held++
			}
		}
		if held >= maxJoinMarks {
			return errJoinTooMany
		}
	}
	mark, _ := json.Marshal(joinMark{Expires: time.Now().Add(joinMarkTTL).UTC()})
	js.put(scopeJoinDecided, key, mark)
	js.marks[key] = true
	_, by, _ := ParseMemberID(d.Sender)
	if rec == nil || rec.Group != g.hexID {
		g.n.log.Debug("a decision on a join request not held here; marked", "group", g.hexID[:8], "request", id, "by", by)
		return nil
	}
	js.del(scopeJoinRequest, id)
	js.requests[id] = nil
	r := g.n.joinRequest(id, *rec)
	verb := "denied"
	if m.approved {
		verb = "approved"
	}
	js.after = append(js.after, func() {
		g.n.log.Info("join request decided by a member", "group", g.hexID[:8], "request", id, "by", by, "decision", verb)
		g.n.broadcast(api.Event{Type: api.EventNotice, Group: g.hexID, Text: fmt.Sprintf("%s %s the join request of %s", by, verb, r.Name)})
	})
	return nil
}

// sharedRequests counts the shared requests of the group held here.
func (g *groupRunner) sharedRequests(ctx context.Context) (int, error) {
	recs, err := g.n.st.Settings(ctx, scopeJoinRequest)
	if err != nil {
		return 0, err
	}
	k := 0
	for _, raw := range recs {
		var rec joinRequestRecord
		if json.Unmarshal(raw, &rec) == nil && rec.Shared && rec.Group == g.hexID {
			k++
		}
	}
	return k, nil
}

// decideShared approves or denies a shared request, on the group's
// goroutine: still held (a decision delivered drops it there too), the
// decision goes to the group with the drop of the copy, then an approved
// joiner is added.
func (n *Node) decideShared(ctx context.Context, id string, rec joinRequestRecord, approve bool) error {
	g, err := n.activeGroup(rec.Group)
	if err != nil {
		return err
	}
	from, err := peer.Decode(rec.From)
	if err != nil {
		return fmt.Errorf("join request %q: %w", id, err)
	}
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != joinIDLen {
		return fmt.Errorf("%w: join request id %q", api.ErrInvalid, id)
	}
	mark, err := json.Marshal(joinMark{Expires: time.Now().Add(joinMarkTTL).UTC()})
	if err != nil {
		return err
	}
	body := (&joinDecisionMsg{id: [joinIDLen]byte(raw), approved: approve}).encode()
	return g.do(ctx, func() error {
		if !g.flush() { // the decisions delivered in this round
			return errStopped
		}
		if _, err := n.st.Setting(ctx, scopeJoinRequest, id); isNotFound(err) {
			return fmt.Errorf("%w: join request %q was decided by another member; 'parley requests' lists those left", api.ErrNotFound, id)
		} else if err != nil {
			return err
		}
		if approve {
			if g.tipHasPeer(from) {
				return fmt.Errorf("%w: the joiner of request %q is a member of %q already", api.ErrExists, id, g.meta.Name)
			}
			// The KeyPackage was valid when it came; it may have expired since.
			if err := n.checkKeyPackage(rec.KeyPackage, from, g.suite()); err != nil {
				return fmt.Errorf("%w: the joiner's KeyPackage is no longer valid (%v); deny the request and ask them for a new invite", api.ErrInvalid, err)
			}
		}
		if _, err := g.send(contentJoinDecision, body, func(b *store.Batch, _ string) {
			b.DeleteSetting(scopeJoinRequest, id)
			b.PutSetting(scopeJoinDecided, joinMarkKey(g.hexID, id), mark)
		}); err != nil {
			return err
		}
		if !approve {
			n.log.Info("shared join request denied", "group", g.hexID[:8], "request", id, "from", rec.From)
			return nil
		}
		var addrs []ma.Multiaddr
		for _, s := range rec.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				addrs = append(addrs, a)
			}
		}
		n.p2p.AddPeerAddrs(from, addrs, welcomeMaxAge)
		n.log.Info("shared join request approved", "group", g.hexID[:8], "request", id, "from", rec.From)
		return g.addMemberNow(rec.KeyPackage, n.id.Name)
	})
}

// dropJoinRequests deletes the group's join requests (and, with all, its
// marks) for which drop says so, in one write. Run after an add of a
// joiner (drop: the joiner is a member now) and on removal (all).
func (g *groupRunner) dropJoinRequests(all bool, drop func(rec joinRequestRecord) bool) {
	ctx := g.n.ctx
	if ctx.Err() != nil {
		ctx = context.Background() // a closing node still drops them
	}
	recs, err := g.n.st.Settings(ctx, scopeJoinRequest)
	if err != nil {
		g.n.log.Warn("join requests unreadable; not dropped", "group", g.hexID[:8], "err", err)
		return
	}
	b := g.n.st.NewBatch()
	for id, raw := range recs {
		var rec joinRequestRecord
		if json.Unmarshal(raw, &rec) == nil && rec.Group == g.hexID && drop(rec) {
			b.DeleteSetting(scopeJoinRequest, id)
		}
	}
	if all {
		for _, s := range g.n.groupSettings(ctx, g.hexID, scopeJoinDecided) {
			b.DeleteSetting(s[0], s[1])
		}
	}
	if b.Len() == 0 {
		return
	}
	if err := g.n.st.Write(ctx, b); err != nil {
		g.n.log.Warn("dropping join requests", "group", g.hexID[:8], "err", err)
	}
}

// dropJoinedRequests drops the requests of joiners that a membership
// change added.
func (g *groupRunner) dropJoinedRequests(added []string) {
	peers := map[string]bool{}
	for _, id := range added {
		if p, _, err := ParseMemberID(id); err == nil {
			peers[p.String()] = true
		}
	}
	if len(peers) > 0 {
		g.dropJoinRequests(false, func(rec joinRequestRecord) bool { return peers[rec.From] })
	}
}

// purgeJoinMarks deletes the marks expired (or unreadable) at now.
func (n *Node) purgeJoinMarks(ctx context.Context, now time.Time) (int, error) {
	return n.st.PurgeSettings(ctx, scopeJoinDecided, func(_ string, raw []byte) bool {
		var m joinMark
		return json.Unmarshal(raw, &m) != nil || !now.Before(m.Expires)
	})
}
