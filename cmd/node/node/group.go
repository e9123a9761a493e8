package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/p2p"
	"github.com/parley-p2p/parley/store"
)

// Group context extensions of Parley groups (private-use range, RFC 9420
// §17.3): the secret the gossip topic and rendezvous namespace derive
// from, which members learn in the Welcome, and the group's name.
const (
	extTopicSecret wire.ExtensionType = 0xF0A1
	extGroupName   wire.ExtensionType = 0xF0A2
)

// groupMeta is what the node keeps about a group besides its ordering
// state (setting scope "group", key the hex group id).
type groupMeta struct {
	Name        string    `json:"name"`
	TopicSecret []byte    `json:"topic_secret,omitempty"`
	State       string    `json:"state"` // active, pending, removed
	Joined      time.Time `json:"joined"`
	// Inviter is the peer a pending join waits on.
	Inviter string `json:"inviter,omitempty"`
	// Suite is the group's cipher suite; records from before groups had
	// suites have none, and their groups are in Suite.
	Suite uint16 `json:"suite,omitempty"`
	// Approval is who must approve a pending join (api.ApproveByInviter
	// or api.ApproveByMembers), as the inviting member answered; empty
	// if the join needs nobody's.
	Approval string `json:"approval,omitempty"`
}

const (
	stateActive  = "active"
	statePending = "pending"
	stateRemoved = "removed"
)

// topicName is the gossip topic of a group: it derives from the topic
// secret, not from the group id that every ciphertext carries.
func topicName(secret, gid []byte) string {
	h := sha256.New()
	h.Write([]byte("parley topic v1\x00"))
	h.Write(secret)
	h.Write(gid)
	return "parley/g/" + hex.EncodeToString(h.Sum(nil)[:16])
}

// historyGroup is the store "group" that holds a group's message history:
// log entries keyed by message id (so no message is recorded twice), the
// record as JSON, the result "f" once final.
func historyGroup(gid []byte) []byte { return append([]byte{'H'}, gid...) }

// groupRunner drives one group: its goroutine owns the ordering loop.
type groupRunner struct {
	n     *Node
	gid   []byte
	hexID string
	meta  groupMeta
	loop  *ordering.Loop
	gs    *groupStore
	topic *p2p.Topic
	// topicName is the group's gossip topic (fixed at creation; topic is
	// set when the goroutine starts).
	topicName string
	in        chan func()
	ctx       context.Context
	stop      context.CancelFunc
	done      chan struct{}
	// members maps peer IDs to member identities (of the canonical
	// epoch), for the From of inbound messages (guarded by mu).
	members map[peer.ID]string
	// recent are the members of any retained epoch on the canonical
	// chain: a member removed a moment ago may still share the Welcome
	// of the commit it made just before.
	recent map[peer.ID]bool
	// known maps the peers of the members of every epoch the loop holds
	// to their identities (see identityOf).
	known map[peer.ID]string
	// files are the files arriving and what was served of those sent.
	files *fileTransfers
	// histHandles are the history records of the write being made, seqs
	// their positions once written, finalSeqs the positions of the
	// messages it marked final, histFinal the epoch each is final in.
	histHandles map[ordering.MessageID]*store.Appended
	histFinal   map[ordering.MessageID]uint64
	seqs        map[ordering.MessageID]uint64
	finalSeqs   map[ordering.MessageID]uint64
	// grouping is set during a round (see writes.go); pending are the
	// outputs waiting for its write, pendingIDs the messages they deliver
	// or send, pendingBytes about their size.
	grouping     bool
	pending      []*pendingWrite
	pendingIDs   map[ordering.MessageID]bool
	pendingBytes int
	// failed is set once a write of group state failed: nothing more is
	// written (the group is stopping, to start again: reopen.go).
	// reopenDelay is the pause before this runner started, if it
	// replaced a stopped one; a successful write sets it to zero.
	failed      bool
	reopenDelay time.Duration
	// joinsWritten is what the join messages of the last write leave to
	// do once it is acted on (joinshare.go).
	joinsWritten []func()
	// writes counts the transactions of group state, outputs the loop
	// outputs they carried.
	writes, outputs atomic.Int64
	// damaged, if not empty, says why the group's saved state could not
	// be read (the loop is then nil); it is set before start and never
	// changes.
	damaged   string
	refreshed time.Time  // when refresh last ran (on the group's goroutine)
	mu        sync.Mutex // guards view and members
	view      api.GroupStatus
}

func (n *Node) newRunner(gid []byte, meta groupMeta, loop *ordering.Loop, gs *groupStore) *groupRunner {
	g := &groupRunner{
		n: n, gid: gid, hexID: hex.EncodeToString(gid), meta: meta, loop: loop, gs: gs,
		in: make(chan func(), 1024), done: make(chan struct{}), members: map[peer.ID]string{},
	}
	g.files = newFileTransfers(g)
	g.topicName = topicName(meta.TopicSecret, gid)
	g.ctx, g.stop = context.WithCancel(n.ctx)
	return g
}

// start joins the group's topic and runs the group's goroutine.
func (g *groupRunner) start() error {
	if g.loop != nil && g.meta.State != statePending {
		t, err := g.n.p2p.Join(g.topicName, g.validate)
		if err != nil {
			return err
		}
		g.topic = t
		if g.n.cfg.DHT {
			if stop, err := g.n.p2p.Rendezvous(g.ctx, g.meta.TopicSecret); err == nil {
				go func() { <-g.ctx.Done(); stop() }()
			}
		}
		go g.readTopic()
	}
	g.refresh()
	if g.loop != nil {
		g.files.resume()
	}
	go g.run()
	return nil
}

// validate is the topic validator. An envelope from another peer is
// handled by the group's loop here, before gossipsub delivers or forwards
// it, so that the loop's verdict decides: what it accepts (or buffers) is
// forwarded; what comes from an author that is a member of no epoch held
// here, for an epoch not held here, is ignored (this member may be
// behind); what does not decode or authenticate, or names an epoch whose
// members its author is not among, is rejected, which lowers the sending
// peer's score (P4) so that floods get it pruned. The subscription itself
// only drains (readTopic).
func (g *groupRunner) validate(ctx context.Context, author peer.ID, payload []byte) p2p.ValidationResult {
	if _, err := ordering.DecodeEnvelope(payload); err != nil {
		g.n.stats.add(&g.n.stats.rejected, 1)
		return p2p.Reject
	}
	if author == g.n.id.PeerID {
		return p2p.Accept // this node's own envelope, on its way out
	}
	data := append([]byte(nil), payload...)
	verdict := make(chan ordering.Verdict, 1)
	// The verdict goes back as soon as the loop has made it: forwarding
	// does not wait for this member's write, only what this member
	// reports (events, catch-up answers) does.
	handle := func() {
		out := g.loop.Handle(time.Now(), ordering.Inbound{From: g.identityOf(author), Data: data})
		verdict <- out.Verdict
		g.applyLater(out, nil, nil)
	}
	// A full queue drops the envelope (not forwarded here; catch-up
	// brings it if it matters) rather than holding pubsub's validation
	// slots, which this node's own publishes need too.
	select {
	case g.in <- handle:
	default:
		return p2p.Ignore
	}
	g.n.stats.add(&g.n.stats.messagesIn, 1)
	select {
	case v := <-verdict:
		switch v {
		case ordering.VerdictReject:
			g.n.stats.add(&g.n.stats.rejected, 1)
			return p2p.Reject
		case ordering.VerdictIgnore:
			return p2p.Ignore
		}
		return p2p.Accept
	case <-ctx.Done():
		return p2p.Ignore // handled all the same; not forwarded
	case <-g.ctx.Done():
		return p2p.Ignore
	}
}

// readTopic drains the subscription: every envelope was handled by
// validate already.
func (g *groupRunner) readTopic() {
	for {
		if _, err := g.topic.Next(g.ctx); err != nil {
			return
		}
	}
}

func (g *groupRunner) run() {
	defer close(g.done)
	tick := time.NewTicker(g.n.cfg.TickInterval)
	defer tick.Stop()
	for {
		select {
		case f := <-g.in:
			g.round(f)
		case <-tick.C:
			if g.loop != nil {
				g.handle(ordering.Tick{})
			}
		case <-g.ctx.Done():
			if g.loop != nil {
				g.apply(g.loop.Flush(time.Now()))
			}
			if g.topic != nil {
				g.topic.Leave()
			}
			return
		}
	}
}

// close stops the goroutine after it saved the group's snapshots, and
// waits for the files arriving to stop.
func (g *groupRunner) close() {
	g.stop()
	<-g.done
	g.files.wait()
}

// do runs f on the group's goroutine and waits for it, and for the write
// of what it left pending (a message it sent is saved when do returns).
func (g *groupRunner) do(ctx context.Context, f func() error) error {
	errc := make(chan error, 1)
	run := func() {
		if err := f(); err != nil {
			errc <- err
			return
		}
		g.afterWrite(func(err error) { errc <- err })
	}
	select {
	case g.in <- run:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.done:
		return g.stoppedErr()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-g.done:
		select {
		case err := <-errc:
			return err
		default:
		}
		return g.stoppedErr()
	}
}

// identityOf returns the member identity of a peer: its identity in the
// canonical epoch, or else in any epoch the loop holds (a member removed
// on this branch is still one of the epochs before), or else its peer ID,
// which is no member's identity.
func (g *groupRunner) identityOf(p peer.ID) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if id, ok := g.members[p]; ok {
		return id
	}
	if id, ok := g.known[p]; ok {
		return id
	}
	return p.String()
}

// finalResult is the result of a history record that became final in
// the canonical epoch epoch: "f" and the epoch's number, which replaces
// the record's own when the message was delivered in an epoch that lost
// a fork.
func finalResult(epoch uint64) []byte { return strconv.AppendUint([]byte("f"), epoch, 10) }

// readResult reads a history record's result: whether it is final and,
// if it says, the canonical epoch it is final in.
func readResult(res []byte) (final bool, epoch uint64, ok bool) {
	if len(res) == 0 || res[0] != 'f' {
		return false, 0, false
	}
	epoch, err := strconv.ParseUint(string(res[1:]), 10, 64)
	return true, epoch, err == nil
}

func (g *groupRunner) publish(env []byte) error {
	if g.topic == nil {
		return nil
	}
	// No timer per message: publishing signs, validates and queues the
	// envelope without waiting on the network.
	g.n.stats.add(&g.n.stats.messagesOut, 1)
	return g.topic.Publish(g.ctx, env)
}

// request sends a catch-up request and hands the answer to the loop.
func (g *groupRunner) request(r ordering.OutRequest) {
	p, _, err := ParseMemberID(r.To)
	g.n.stats.add(&g.n.stats.syncRequests, 1)
	if err != nil {
		g.in <- func() { g.handle(ordering.SyncResponse{ID: r.ID, Err: err}) }
		return
	}
	body := append(append([]byte(nil), g.gid...), r.Body...)
	go func() {
		ctx, cancel := context.WithTimeout(g.ctx, 15*time.Second)
		defer cancel()
		resp, err := g.n.p2p.Request(ctx, p, protoSync, body)
		select {
		case g.in <- func() { g.handle(ordering.SyncResponse{ID: r.ID, Body: resp, Err: err}) }:
		case <-g.ctx.Done():
		}
	}()
}

// notice logs a loop notice and turns the ones a user cares about into
// events.
func (g *groupRunner) notice(no ordering.Notice) {
	short := g.hexID[:8]
	switch no.Kind {
	case ordering.NoticeRejected:
		g.n.log.Debug("message rejected", "group", short, "from", no.From, "err", no.Err)
	case ordering.NoticeFork:
		g.n.stats.add(&g.n.stats.forks, 1)
		g.n.log.Info("fork", "group", short, "epoch", no.Epoch)
		g.n.broadcast(api.Event{Type: api.EventNotice, Group: g.hexID, Text: fmt.Sprintf("competing commits on epoch %d; the fork choice will keep one", no.Epoch)})
	case ordering.NoticeRollback:
		g.n.stats.add(&g.n.stats.rollbacks, 1)
		g.n.log.Info("rollback", "group", short, "depth", no.Depth, "to", no.Epoch)
		g.n.broadcast(api.Event{Type: api.EventNotice, Group: g.hexID, Text: rollbackText(no, MemberID(g.n.id.PeerID, g.n.id.Name))})
	case ordering.NoticeRemoved:
		g.n.log.Info("removed from the group", "group", short, "epoch", no.Epoch)
		g.meta.State = stateRemoved
		g.saveMeta()
		g.dropJoinRequests(true, func(joinRequestRecord) bool { return true }) // nobody here can decide them now
		g.n.broadcast(api.Event{Type: api.EventNotice, Group: g.hexID, Text: "you were removed from the group"})
	case ordering.NoticeRejoined:
		g.n.log.Warn("rejoined after a long absence", "group", short, "missed_from", no.MissedFrom, "missed_to", no.MissedTo)
		g.n.broadcast(api.Event{Type: api.EventNotice, Group: g.hexID, Text: fmt.Sprintf("rejoined; messages of epochs %d to %d could not be recovered", no.MissedFrom, no.MissedTo)})
	case ordering.NoticeMembership:
		g.n.log.Debug("membership", "group", short, "epoch", no.Epoch, "added", names(no.Added), "removed", names(no.Removed))
		for i, m := range no.Added {
			if i < len(no.AddedBy) && no.AddedBy[i] != "" {
				g.noteAddedBy(m, names(no.AddedBy[i : i+1])[0])
			}
		}
		g.dropJoinedRequests(no.Added)
		mb := &api.Membership{Epoch: no.Epoch, Added: names(no.Added), Removed: names(no.Removed)}
		if slices.ContainsFunc(no.RemovedBy, func(s string) bool { return s != "" }) {
			mb.RemovedBy = names(no.RemovedBy)
		}
		g.n.broadcast(api.Event{Type: api.EventMembership, Group: g.hexID, Membership: mb})
	case ordering.NoticeBehind:
		g.n.log.Debug("behind; catching up", "group", short, "from", no.From, "epoch", no.Epoch)
	case ordering.NoticeSynced:
		g.n.log.Debug("catch-up answer", "group", short, "from", no.From, "envelopes", no.Count)
	case ordering.NoticeStorage:
		g.n.log.Error("a saved message could not be read back; not sent", "group", short, "err", no.Err)
	}
}

func names(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		_, name, err := ParseMemberID(id)
		if err != nil || name == "" {
			name = id // "" stays ""
		}
		out[i] = name
	}
	return out
}

// refresh updates the member map and the status view after a change.
func (g *groupRunner) refresh() {
	if g.loop == nil {
		g.mu.Lock()
		g.view = api.GroupStatus{Group: g.withSuite(api.Group{ID: g.hexID, Name: g.meta.Name,
			Pending: g.meta.State == statePending && g.damaged == "", Approval: g.approval(), Damaged: g.damaged})}
		g.mu.Unlock()
		return
	}
	g.refreshed = time.Now()
	tip := g.loop.Tip()
	members := map[peer.ID]string{}
	for _, m := range tip.Members {
		if p, _, err := ParseMemberID(m); err == nil {
			members[p] = m
		}
	}
	recent := map[peer.ID]bool{}
	for _, n := range g.loop.Graph().Chain(tip) {
		for _, m := range n.Members {
			if p, _, err := ParseMemberID(m); err == nil {
				recent[p] = true
			}
		}
	}
	known := map[peer.ID]string{}
	for _, m := range g.loop.Members() {
		if p, _, err := ParseMemberID(m); err == nil {
			known[p] = m
		}
	}
	st := g.loop.Stats()
	missing := g.loop.Missing()
	var waiting []api.Change
	for _, c := range g.loop.Waiting() {
		ch := api.Change{Change: c.Kind, Member: names([]string{c.Identity})[0], AskedAt: c.Asked.UTC().Truncate(time.Millisecond)}
		if c.By != "" {
			ch.By = names([]string{c.By})[0]
		}
		waiting = append(waiting, ch)
	}
	online := 0
	for p := range members {
		if p != g.n.id.PeerID && g.n.p2p.Connected(p) {
			online++
		}
	}
	g.mu.Lock()
	stopped := ""
	if g.failed {
		stopped = g.view.Stopped // set by halt
	}
	g.members, g.recent, g.known = members, recent, known
	g.view = api.GroupStatus{
		Group: g.withSuite(api.Group{ID: g.hexID, Name: g.meta.Name, Epoch: tip.Number, Members: len(tip.Members),
			Pending: g.meta.State == statePending, Approval: g.approval(), Removed: g.loop.Removed()}),
		FinalEpoch: g.loop.FinalEpoch(), Forks: st.Forks, Rollbacks: st.Rollbacks, Syncing: g.loop.Syncing(),
		Missing: missing.Messages, MissingBytes: missing.Bytes, BehindEpochs: missing.Epochs,
		Waiting: waiting, Outbox: g.loop.Unconfirmed(), OnlinePeers: online,
		Stopped: stopped,
	}
	g.mu.Unlock()
}

func (g *groupRunner) status() api.GroupStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.view
}

// approval is who must approve this node's join while it is pending.
func (g *groupRunner) approval() string {
	if g.meta.State != statePending {
		return ""
	}
	return g.meta.Approval
}

func (g *groupRunner) saveMeta() {
	b := g.n.st.NewBatch()
	rec, _ := json.Marshal(g.meta)
	b.PutSetting(scopeGroup, g.hexID, rec)
	if err := g.n.st.Write(context.Background(), b); err != nil {
		g.n.log.Error("saving group settings", "group", g.hexID[:8], "err", err)
	}
}

const scopeGroup = "group"

// plural formats a count with its noun.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
