package ordering

import (
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

// epochInfo is what the Loop holds about one epoch of its graph.
type epochInfo struct {
	node  *Node
	state *group.State // nil for an epoch this member was removed in
	// commit is the envelope of the commit that made the epoch (nil for
	// the epoch the member joined at).
	commit []byte
	// log holds the envelopes made in the epoch (proposals, application
	// messages), in arrival order, to serve catch-up.
	log      []*logEntry
	seenAt   time.Time
	dirty    bool // message keys changed since the last snapshot
	final    bool
	opaque   bool // stands for a branch where this member was removed
	member   bool
	savedAt  time.Time
	pendSeen time.Time // when pending work (proposals, intents) was first seen here
	// committed is set once this member committed on the epoch.
	committed bool
	// stuck is the work pending when a commit here last failed or found
	// nothing this member could carry (not saved; zero if none): it is
	// tried again once an intent or a proposal comes, and not before.
	stuck pendingWork
	// waiting holds commits that refer to proposals not received yet.
	waiting []bufferedEnvelope
	// welcomes are this member's Welcomes for the members its commit
	// added, released when the epoch becomes final.
	welcomes []OutWelcome
	// appCount and appDigest summarize the application messages logged in
	// the epoch (see LogDigest).
	appCount  uint32
	appDigest [8]byte
	appBytes  uint64 // their envelopes' bytes
	// refused are application envelopes refused for now (see
	// noteRefused), listed as held in catch-up requests.
	refused map[[8]byte]string // by payload hash prefix, the sender's identity
	// refusedDigest is the XOR of refused's keys (see digest).
	refusedDigest [8]byte
	// refusedKept are the envelopes refused for now whose sender was
	// named (its removal came first here), in arrival order, within
	// Config.MaxRefusedKept bytes (refusedKeptBytes), served in catch-up to
	// members that never saw them (see noteRefused).
	refusedKept      []*logEntry
	refusedKeptBytes int
	// jumped is set on a restored epoch whose sending ratchets jumped
	// past its snapshot and whose new position is not saved yet (see
	// saveJumps).
	jumped bool
	// sentSinceSave counts this member's messages protected in the epoch
	// since its last snapshot.
	sentSinceSave int
	// missedFrom is, for the epoch a rejoin started a history at, the
	// first epoch of the range this member missed (see memberSince; not
	// persisted).
	missedFrom uint64
}

// maxRefused bounds the envelopes an epoch remembers as refused.
const maxRefused = 1 << 14

// defaultRefusedKept is Config.MaxRefusedKept's default: the messages a
// member sent around its removal are a few; a removed member that floods
// the epochs it still holds keys of gets no more than this per epoch
// passed on.
const defaultRefusedKept = 1 << 20

// noteRefused remembers an application envelope refused for now (its
// sender is not a member of the canonical epoch) by its payload hash's
// first 8 bytes. When its sender is named (it authenticated as a member
// removed on the canonical chain), its bytes env are kept too, within
// keep bytes for the epoch, and served in catch-up to members that never
// saw it: they refuse it in their turn (or take it in, caught up from
// before the removal), and the digests of the epoch agree. Otherwise two
// members that differ only by such envelopes (one refused them, the other
// never saw them, and the members that took them in are gone) differ for
// good, and each change of view sends one of them asking the other again.
func (info *epochInfo) noteRefused(h [32]byte, sender string, env []byte, keep int) {
	if info.refused == nil {
		info.refused = map[[8]byte]string{}
	}
	id := [8]byte(h[:8])
	if _, ok := info.refused[id]; ok {
		info.refused[id] = sender
		return
	}
	if len(info.refused) < maxRefused {
		info.refused[id] = sender
		xor8(&info.refusedDigest, id)
		if sender != "" && env != nil && info.refusedKeptBytes+len(env) <= keep {
			info.refusedKept = append(info.refusedKept, newLogEntry(KindApplication, env, h))
			info.refusedKeptBytes += len(env)
		}
	}
}

// unrefuse forgets that an envelope was refused: it may be taken now.
func (info *epochInfo) unrefuse(id [8]byte) {
	if _, ok := info.refused[id]; ok {
		delete(info.refused, id)
		xor8(&info.refusedDigest, id)
		info.refusedKept = slices.DeleteFunc(info.refusedKept, func(e *logEntry) bool {
			if [8]byte(e.payload[:8]) != id {
				return false
			}
			info.refusedKeptBytes -= e.size
			return true
		})
	}
}

// servable returns the envelopes of the epoch that catch-up may send: its
// log, then the refused envelopes it keeps.
func (info *epochInfo) servable() []*logEntry {
	if len(info.refusedKept) == 0 {
		return info.log
	}
	return slices.Concat(info.log, info.refusedKept)
}

// digest returns the LogDigest of epoch number n as this member compares
// it with others' (in heads and catch-up requests): the application
// messages it holds there and those it refuses there, every message it
// has seen of the epoch. A member that refuses what another took in (its
// sender's removal came first here) has nothing to get from it; compared
// by what each holds, the two would differ for good and ask each other
// for ever. Bytes are those of the messages held.
func (info *epochInfo) digest(n uint64) LogDigest {
	d := LogDigest{Epoch: n, Count: info.appCount + uint32(len(info.refused)), Bytes: info.appBytes, Digest: info.appDigest}
	xor8(&d.Digest, info.refusedDigest)
	return d
}

// xor8 XORs b into a.
func xor8(a *[8]byte, b [8]byte) {
	for i := range a {
		a[i] ^= b[i]
	}
}

// noteApp adds an application envelope's payload hash (MessageHash) to
// the epoch's digest.
func (info *epochInfo) noteApp(h [32]byte, size int) {
	info.appCount++
	info.appBytes += uint64(size)
	for i := range info.appDigest {
		info.appDigest[i] ^= h[i]
	}
}

// Loop is one member's ordering state machine for one group. It is not
// safe for concurrent use: one goroutine (the group loop) owns it.
type Loop struct {
	cfg     Config
	groupID []byte
	self    string

	graph  *Graph
	epochs map[EpochID]*epochInfo
	tip    *Node

	now     time.Time
	out     *Output
	changes *Changes

	headSeq   uint64
	lastHead  time.Time
	headDirty bool
	// headEpoch is the epoch number of the last head published.
	headEpoch uint64

	outbox    map[MessageID]*outgoing
	intents   []*intent
	intentSeq uint64
	delivered map[MessageID]*deliveredMsg
	byEpoch   map[EpochID][]MessageID // messages seen in each retained epoch
	buffered  []bufferedEnvelope
	// bufferedBytes and bufferedBy count the bytes buffered, in all and
	// per sender.
	bufferedBytes int
	bufferedBy    map[string]int
	// gossipFrom is the author of the gossip envelope being handled and
	// verdict what this member made of it (see Verdict).
	gossipFrom string
	verdict    Verdict
	seen       map[[32]byte]struct{}

	voteEpoch map[string]uint64 // epoch number of each member's latest head
	// voteSeen is when each member's latest head arrived directly (not
	// relayed); liveVotes counts only members with a recent one.
	voteSeen map[string]time.Time
	// abandonedSince is when checkAbandoned's condition began to hold,
	// zero if it does not; abandonAsks rotates the members it asks.
	abandonedSince time.Time
	abandonAsks    int
	// heads are the members' latest signed heads (envelopes), relayed to
	// a member refused as removed so that it sees the votes it cannot
	// place itself.
	heads map[string][]byte
	// deferred are the catch-up requests heads called for, waiting out
	// gossipGrace (see deferAsk).
	deferred map[string]*deferredAsk
	// headViews are what the members' latest heads said (see Missing).
	headViews map[string]headView
	// heardSince is when this member first took in a head of each member
	// (unix nanoseconds; 0 for one whose head it saved before a restart):
	// a member heard before a message was gossiped was listening then
	// (see serveSync's leave).
	heardSince map[string]int64
	// sketchHint is the size of the next sketch of an epoch's log held,
	// where one did not peel (see sketchesFailed).
	sketchHint map[EpochID]int
	votesAsked time.Time            // when heads were last asked for (askVotes)
	votesFrom  map[string]time.Time // when each peer was last asked for heads
	requests   map[uint64]*outstanding
	nextReq    uint64
	// pagingFrom is the peer whose catch-up answers this member pages
	// through (the last one said there was more), since pagingAt.
	pagingFrom string
	pagingAt   time.Time
	behindAsk  map[string]time.Time // last sync request per peer
	prompted   map[string]time.Time // last prompt per peer (ownProposalWaits)
	// fruitless is, per peer, the view (see askFor) whose request for
	// the logs that differ brought nothing.
	fruitless map[string][32]byte
	// unanswered are the peers whose last request failed or timed out
	// (see widenSync).
	unanswered map[string]bool
	// refusedFrom is, per peer, its last refusal of this member's
	// request (see removedRecheck).
	refusedFrom map[string]*refusal
	// removedAsk is when this member last asked while it held itself
	// removed.
	removedAsk time.Time
	// backPending are the logs to ask peers back for that askBack could
	// not ask at once.
	backPending map[string]backAsk
	// viaSync is set while the envelopes of a catch-up answer are taken
	// in: their log entries are not marked as come by gossip.
	viaSync bool
	// leftOut are, per peer, the envelopes its answers left out because
	// gossip was bringing them (see askLeftOut).
	leftOut map[string]*leftOutWait
	// toldRemoved is which removing epoch each removed requester was
	// told of (see removedResponse).
	toldRemoved map[string]EpochID

	lastUpdate time.Time
	sentSince  uint32 // application messages sent since lastUpdate
	// lastSentAt is the SentAt of this member's latest message: each
	// message says a later time than the one before, so that a
	// member's messages sorted by SentAt are in the order it sent them.
	lastSentAt uint64
	// sentMarks keep, per sender signature key, the SentAt of what it
	// sent that this member delivered (forgotten.go).
	sentMarks map[string]*sentMarks
	removed   bool
	// readded is set when a Welcome this member could not read came:
	// while it holds itself removed, its requests ask for a GroupInfo,
	// and heads for epochs below its root that it does not hold make it
	// ask (see Handle, WelcomeIn). A history that starts over clears it.
	readded bool
	// bundle is the KeyPackage a joiner joined with, kept (with spare
	// Welcomes for it) until its join epoch is final.
	bundle *group.KeyPackageBundle
	spare  [][]byte
	// refusedBy are the peers that refused catch-up to this member as a
	// non-member while it was on epoch refusedAt.
	refusedAt EpochID
	refusedBy map[string]bool
	goneBy    map[string]bool
	// pendingRejoin is a GroupInfo kept while catch-up is tried.
	pendingRejoin *pendingRejoin
	// wantLog is set for a new joiner until it has the log of its epoch.
	wantLog bool
	// prunedBelow is the epoch number below which this member deleted its
	// history (0 if it never pruned).
	prunedBelow uint64
	stats       Stats
	// toSpill and outSpill are the large envelopes and own messages saved
	// by the last output, dropped from memory when the next event begins
	// (see Archive).
	toSpill  []*logEntry
	outSpill []*outgoing
}

// Stats counts what happened, for metrics and the simulator.
type Stats struct {
	Forks, Rollbacks, MaxRollback          int
	Commits, Proposals, Heads, AppSent     int
	Resent, Reissued, SyncRequests, Rejoin int
	Rejected, Waiting                      int
	BytesOut                               int
	QuorumFinalRollbacks                   int
	// AbandonAsks counts requests for a GroupInfo to leave an abandoned
	// history (see checkAbandoned).
	AbandonAsks int
	// ForgottenCopies counts copies of messages delivered before their
	// ids were forgotten, taken in and not delivered again
	// (forgotten.go).
	ForgottenCopies int
	// Ignored counts gossip envelopes dropped because their author is a
	// member of no epoch held here; Evicted, buffered envelopes dropped
	// to stay within the buffer's bounds; Unauthenticated, catch-up
	// requests refused before anything was served.
	Ignored, Evicted, Unauthenticated int
	// SyncNewBytes counts the bytes of the envelopes in catch-up answers
	// that this member had not seen and took in: what it had missed.
	SyncNewBytes int
	// Sync splits catch-up's bytes by what they carry.
	Sync SyncCost
}

type outgoing struct {
	msg   AppMessage // its Body is nil once spilled
	epoch EpochID    // epoch it was last sent in
	// spilled is set once the body is only in the Archive; bodyHash is
	// then its SHA-256, to check what the archive returns.
	spilled  bool
	bodyHash [32]byte
}

type deliveredMsg struct {
	epochs  []EpochID // epochs it was seen in
	final   bool
	finalIn EpochID // the epoch it was final in, when final
	at      uint64  // the tip's epoch number when it was first delivered
	// settled marks a message final before what this member holds: a
	// copy of one delivered before its id was forgotten (forgotten.go),
	// or one restored with none of the epochs it was seen in. Its copies
	// are not delivered, nor made final, again.
	settled bool
}

type bufferedEnvelope struct {
	from string
	env  *Envelope
	data []byte
	// viaSync says that it came in a catch-up answer (see Loop.viaSync).
	viaSync bool
}

type outstanding struct {
	to   string
	sent time.Time
	ask  syncAsk // asked for again, with what arrived since, when the answer says there is more
	// sketched are the logs the request sketched, with the cells each
	// had: if one did not peel, the next sketch of it is larger.
	sketched map[EpochID]int
}

// Self returns this member's identity.
func (l *Loop) Self() string { return l.self }

// GroupID returns the group id.
func (l *Loop) GroupID() []byte { return l.groupID }

// Tip returns the canonical epoch this member is on.
func (l *Loop) Tip() *Node { return l.tip }

// State returns the MLS state of the canonical epoch.
func (l *Loop) State() *group.State { return l.epochs[l.tip.ID].state }

// Graph exposes the epoch graph (read only).
func (l *Loop) Graph() *Graph { return l.graph }

// Stats returns the counters.
func (l *Loop) Stats() Stats { return l.stats }

// StrayVotes returns the number of identities whose latest head this
// member holds although they are members of no epoch it holds. Heads are
// accepted only from members of held epochs, and those of members removed
// at or before the root are forgotten when it prunes, so it is zero.
func (l *Loop) StrayVotes() int { return len(l.graph.nonVoters()) }

// Syncing reports whether catch-up requests are outstanding.
func (l *Loop) Syncing() bool { return len(l.requests) > 0 }

// OutboxLen is the number of own messages not yet depth-final (kept to be
// sent again should their epoch lose).
func (l *Loop) OutboxLen() int { return len(l.outbox) }

// Unconfirmed is the number of own messages whose epoch is not final yet.
func (l *Loop) Unconfirmed() int {
	n := 0
	for _, o := range l.outbox {
		if info := l.epochs[o.epoch]; info == nil || !info.final {
			n++
		}
	}
	return n
}

// FinalEpoch returns the number of the newest final epoch on the canonical
// chain (the root's if none after it is).
func (l *Loop) FinalEpoch() uint64 {
	for n := l.tip; n != nil; n = n.parent {
		if info := l.epochs[n.ID]; info != nil && info.final {
			return n.Number
		}
	}
	return l.graph.Root().Number
}

// Removed reports whether the member is out of the group on its canonical
// chain.
func (l *Loop) Removed() bool { return l.removed }

// identities lists the members of a state, sorted.
func identities(s *group.State) []string {
	var out []string
	for _, m := range s.Members() {
		out = append(out, Identity(m.LeafNode))
	}
	sort.Strings(out)
	return out
}

func newLoop(cfg Config, s *group.State, now time.Time) *Loop {
	cfg = cfg.withDefaults()
	l := &Loop{
		cfg:        cfg,
		groupID:    append([]byte(nil), s.GroupID()...),
		self:       Identity(s.Tree().Leaf(s.OwnLeaf())),
		epochs:     map[EpochID]*epochInfo{},
		outbox:     map[MessageID]*outgoing{},
		delivered:  map[MessageID]*deliveredMsg{},
		byEpoch:    map[EpochID][]MessageID{},
		seen:       map[[32]byte]struct{}{},
		requests:   map[uint64]*outstanding{},
		behindAsk:  map[string]time.Time{},
		voteEpoch:  map[string]uint64{},
		voteSeen:   map[string]time.Time{},
		heads:      map[string][]byte{},
		votesFrom:  map[string]time.Time{},
		bufferedBy: map[string]int{},
		sentMarks:  map[string]*sentMarks{},
		now:        now,
	}
	root := &Node{ID: EpochIDOf(s), Number: s.Epoch(), Members: identities(s)}
	l.graph = NewGraph(root)
	l.epochs[root.ID] = &epochInfo{node: root, state: s, seenAt: now, member: true, dirty: true}
	l.tip = root
	l.lastUpdate = now
	l.headDirty = true
	return l
}

// Create starts a group with this member alone.
func Create(cfg Config, groupID []byte, bundle *group.KeyPackageBundle, now time.Time) (*Loop, *Output, error) {
	return CreateWith(cfg, groupID, nil, bundle, now)
}

// CreateWith starts a group with this member alone and the given group
// context extensions.
func CreateWith(cfg Config, groupID []byte, extensions wire.Extensions, bundle *group.KeyPackageBundle, now time.Time) (*Loop, *Output, error) {
	c := cfg.withDefaults()
	s, err := group.Create(c.MLS, groupID, extensions, bundle)
	if err != nil {
		return nil, nil, err
	}
	l := newLoop(cfg, s, now)
	l.begin(now)
	return l, l.finish(), nil
}

// Join joins a group from a Welcome (an encoded MLSMessage). tree is the
// encoded ratchet tree when the Welcome does not carry it.
func Join(cfg Config, welcome []byte, bundle *group.KeyPackageBundle, tree []byte, now time.Time) (*Loop, *Output, error) {
	c := cfg.withDefaults()
	var m wire.MLSMessage
	if err := codec.Unmarshal(welcome, &m); err != nil || m.Welcome == nil {
		return nil, nil, fmt.Errorf("ordering: not a Welcome: %v", err)
	}
	var opts group.JoinOptions
	if tree != nil {
		if err := codec.Unmarshal(tree, &opts.Tree); err != nil {
			return nil, nil, fmt.Errorf("ordering: ratchet tree: %w", err)
		}
	}
	s, err := group.JoinWelcome(c.MLS, m.Welcome, bundle, opts)
	if err != nil {
		return nil, nil, err
	}
	l := newLoop(cfg, s, now)
	l.bundle = bundle
	// Messages of the join epoch may have gone out before this member
	// subscribed: ask the first member heard from for the epoch's log.
	l.wantLog = true
	l.begin(now)
	l.out.NewEpochs = append(l.out.NewEpochs, EpochInfo{ID: l.tip.ID, Number: l.tip.Number, Members: l.tip.Members})
	return l, l.finish(), nil
}

func (l *Loop) begin(now time.Time) {
	l.spill()
	if now.After(l.now) {
		l.now = now
	}
	l.out = &Output{}
	l.changes = &Changes{}
}

func (l *Loop) finish() *Output {
	l.saveJumps()
	l.flushSnapshots(false)
	l.maybeHead()
	if !l.changes.empty() {
		if l.changes.metaChanged() {
			l.changes.Meta = l.encodeMeta()
		}
		l.out.Persist = l.changes
	}
	out := l.out
	l.out, l.changes = nil, nil
	for _, p := range out.Publish {
		l.stats.BytesOut += len(p)
	}
	return out
}

// Handle processes one event at time now and returns what to do.
func (l *Loop) Handle(now time.Time, ev Event) *Output {
	l.begin(now)
	switch e := ev.(type) {
	case Inbound:
		l.gossip(e.From, e.Data)
		l.out.Verdict = l.verdict
	case Tick:
		l.tick()
	case PeerJoined:
		l.headDirty = true
	case SendMessage:
		l.send(e.ContentType, e.Body)
	case AddMember:
		l.addIntent(intentAdd, e.KeyPackage, "")
	case RemoveMember:
		l.addIntent(intentRemove, nil, e.Identity)
	case UpdateKeys:
		l.addIntent(intentUpdate, nil, "")
	case Leave:
		l.addIntent(intentLeave, nil, "")
	case SyncRequest:
		l.serveSync(e.From, e.ID, e.Body)
	case SyncResponse:
		l.syncResponse(e.ID, e.Body, e.Err)
	case WelcomeIn:
		if len(l.spare) < 8 {
			l.spare = append(l.spare, e.Welcome)
		}
		// A member that concluded it was removed (its branch lost, and
		// the winners, who could not yet count it a member, refused it)
		// and is then added again on the winning branch starts there.
		// One it cannot read (its KeyPackage's init key was spent when
		// its join epoch became final) still says that a member added it
		// again, on a branch it cannot see, after any refusals it got:
		// those peers are asked again at once, not after
		// removedRecheck, and, once it holds itself removed, for a
		// GroupInfo, so that one that counts it a member and holds none
		// of its epochs answers with a way back (a rejoin) instead of
		// "unknown". That holds whether the Welcome comes before or
		// after it concludes it was removed.
		switch {
		case l.removed && l.restartFromSpareWelcome():
		case l.removed || l.bundle == nil || l.bundle.InitKey == nil:
			l.refusedFrom, l.readded = nil, true
		}
	}
	if _, isTick := ev.(Tick); !isTick {
		l.maybeCommit()
	}
	return l.finish()
}

func (l *Loop) reject(from string, err error) {
	if from != "" && from == l.gossipFrom {
		l.verdict = VerdictReject
	}
	l.stats.Rejected++
	l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, From: from, Err: err})
}

func (l *Loop) randomID() MessageID {
	var id MessageID
	if _, err := io.ReadFull(l.cfg.Rand, id[:]); err != nil {
		panic("ordering: randomness failed: " + err.Error())
	}
	return id
}

// inbound handles an envelope from the topic.
func (l *Loop) inbound(from string, data []byte) {
	env, err := DecodeEnvelope(data)
	if err != nil {
		l.reject(from, err)
		return
	}
	if l.wantLog {
		l.askSyncIdle(from, syncAsk{joinLog: true})
	}
	h := MessageHash(env.Payload)
	if _, dup := l.seen[h]; dup {
		return
	}
	if env.Kind == KindHead {
		l.seen[h] = struct{}{}
		l.head(from, env)
		return
	}
	info := l.epochs[env.Epoch]
	switch {
	case info == nil || info.opaque:
		l.buffer(from, env, data)
		return
	case info.state == nil:
		// An epoch this member holds no state of and never will: the one
		// a rejoin started its history at (it had a GroupInfo, not the
		// epoch's secrets), or one restored without a snapshot. Its
		// messages cannot be read here; kept, they would fill the buffer
		// and call for catch-up that brings them again.
		return
	}
	switch env.Kind {
	case KindHandshake:
		if l.handshake(from, info, env, data) {
			l.seen[h] = struct{}{}
		}
	case KindApplication:
		if l.application(from, info, env, data) {
			l.seen[h] = struct{}{}
		}
	}
}

// replayBuffered processes buffered messages for a newly known epoch.
func (l *Loop) replayBuffered(id EpochID) {
	var keep, ready []bufferedEnvelope
	for _, b := range l.buffered {
		if b.env.Epoch == id {
			ready = append(ready, b)
		} else {
			keep = append(keep, b)
		}
	}
	l.buffered = keep
	l.bufferedBytes, l.bufferedBy = 0, map[string]int{}
	for _, b := range keep {
		l.bufferedBytes += len(b.data)
		l.bufferedBy[b.from] += len(b.data)
	}
	// Handshakes (proposals, commits) before application messages.
	sort.SliceStable(ready, func(i, j int) bool { return ready[i].env.Kind < ready[j].env.Kind })
	was := l.viaSync
	for _, b := range ready {
		l.viaSync = b.viaSync
		l.inbound(b.from, b.data)
	}
	l.viaSync = was
}

// handshake processes a proposal or commit made in epoch info. It reports
// whether the message is done with (processed or rejected for good); a
// commit that refers to a proposal not received yet waits for it.
func (l *Loop) handshake(from string, info *epochInfo, env *Envelope, data []byte) bool {
	res, err := info.state.ProcessBytes(env.Payload)
	if err != nil {
		switch {
		case errors.Is(err, group.ErrOwnMessage):
		case errors.Is(err, group.ErrUnknownProposal):
			if len(info.waiting) < l.cfg.MaxBuffered {
				info.waiting = append(info.waiting, bufferedEnvelope{from: from, env: env, data: data})
				l.stats.Waiting++
			}
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, From: from, Err: fmt.Errorf("waiting: %w", err)})
			l.askSync(from)
			return false
		default:
			l.reject(from, fmt.Errorf("handshake in epoch %d: %w", info.node.Number, err))
			info.noteRefused(MessageHash(env.Payload), "", nil, 0)
		}
		return true
	}
	if res.Commit == nil {
		// A proposal: cached in the epoch's state, kept for catch-up.
		l.logEnvelope(info, env.Kind, data, MessageHash(env.Payload), MessageID{})
		info.dirty = true
		if info.pendSeen.IsZero() {
			info.pendSeen = l.now
		}
		// Commits waiting for proposals may go now.
		waiting := info.waiting
		info.waiting = nil
		for _, w := range waiting {
			l.inbound(w.from, w.data)
		}
		return true
	}
	if res.Sender.Type == wire.SenderNewMemberCommit {
		if err := l.checkResync(info, res.Commit); err != nil {
			res.Commit.Discard()
			l.reject(from, fmt.Errorf("handshake in epoch %d: %w", info.node.Number, err))
			return true
		}
	}
	l.addEpoch(info, res.Commit, data, res.Sender)
	l.reconsider()
	return true
}

// addEpoch records the epoch a commit made on parent leads to.
func (l *Loop) addEpoch(parent *epochInfo, sc *group.StagedCommit, commitEnv []byte, committer wire.Sender) *epochInfo {
	l.stats.Commits++
	h := MessageHash(mustEnvelope(commitEnv).Payload)
	if len(parent.node.children) > 0 {
		l.stats.Forks++
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeFork, Epoch: parent.node.Number})
	}
	if sc.SelfRemoved || sc.State == nil {
		return l.addOpaque(parent, sc, h, commitEnv)
	}
	s := sc.State
	id := EpochIDOf(s)
	if old := l.epochs[id]; old != nil {
		return old
	}
	n := &Node{ID: id, Parent: parent.node.ID, Number: s.Epoch(), CommitHash: h, Members: identities(s)}
	switch committer.Type {
	case wire.SenderMember:
		if leaf := parent.state.Tree().Leaf(group.LeafIndex(committer.Index)); leaf != nil {
			n.Committer = Identity(leaf)
		}
	case wire.SenderNewMemberCommit:
		if leaf := s.Tree().Leaf(s.OwnLeaf()); leaf != nil && s.OwnLeaf() == group.LeafIndex(committer.Index) {
			n.Committer = Identity(leaf)
		}
	}
	n.RemovedBy = removedBy(parent.state, sc)
	n.AddedBy = addedBy(parent.state, sc)
	if !l.graph.Add(n) {
		return nil
	}
	info := &epochInfo{node: n, state: s, commit: commitEnv, seenAt: l.now, member: true, dirty: true}
	l.epochs[id] = info
	l.out.NewEpochs = append(l.out.NewEpochs, EpochInfo{ID: n.ID, Parent: n.Parent, Number: n.Number, Members: n.Members})
	l.changes.Log = append(l.changes.Log, LogEntry{Epoch: parent.node.ID, Envelope: commitEnv})
	l.replayBuffered(id)
	return info
}

// removedBy returns, for each member a commit removes, the member who
// asked for it (the Remove's or SelfRemove's sender, as parent's tree
// has them), or nil if the commit removes nobody.
func removedBy(parent *group.State, sc *group.StagedCommit) map[string]string {
	if parent == nil {
		return nil // an epoch joined from outside (a rejoin): not known
	}
	var by map[string]string
	t := parent.Tree()
	for _, ap := range sc.Proposals {
		var removed group.LeafIndex
		switch p := ap.Proposal.(type) {
		case *wire.Remove:
			removed = group.LeafIndex(p.Removed)
		case *wire.SelfRemove:
			removed = group.LeafIndex(ap.Sender.Index)
		default:
			continue
		}
		gone, asker := t.Leaf(removed), t.Leaf(group.LeafIndex(ap.Sender.Index))
		if gone == nil || asker == nil || ap.Sender.Type != wire.SenderMember {
			continue
		}
		if by == nil {
			by = map[string]string{}
		}
		by[Identity(gone)] = Identity(asker)
	}
	return by
}

// addOpaque records a commit that removed this member: its epoch cannot be
// known, so it stands as an opaque node (id derived from the commit). It
// has no votes this member can see; it is canonical only when no branch
// where this member stays gathers votes, and a member that others refuse
// as a non-member concludes it was removed (see syncResponse).
func (l *Loop) addOpaque(parent *epochInfo, sc *group.StagedCommit, h [32]byte, commitEnv []byte) *epochInfo {
	id := opaqueID(h)
	if old := l.epochs[id]; old != nil {
		return old
	}
	members := map[string]bool{}
	for _, m := range parent.node.Members {
		members[m] = true
	}
	delete(members, l.self)
	var ms []string
	for m := range members {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	n := &Node{ID: id, Parent: parent.node.ID, Number: parent.node.Number + 1, CommitHash: h, Members: ms}
	if !l.graph.Add(n) {
		return nil
	}
	info := &epochInfo{node: n, commit: commitEnv, seenAt: l.now, opaque: true}
	l.epochs[id] = info
	l.changes.Log = append(l.changes.Log, LogEntry{Epoch: parent.node.ID, Envelope: commitEnv})
	return info
}

// opaqueID is the id of the opaque node a commit whose payload hash is h
// makes (see addOpaque): a member that removed another on its branch can
// tell from a request whether the removed one holds the removing commit.
func opaqueID(h [32]byte) EpochID {
	var id EpochID
	copy(id[:], "opaque")
	copy(id[6:], h[:26])
	return id
}

func mustEnvelope(data []byte) *Envelope {
	e, err := DecodeEnvelope(data)
	if err != nil {
		panic("ordering: own envelope does not decode: " + err.Error())
	}
	return e
}

// reconsider runs the fork choice and moves to its tip.
func (l *Loop) reconsider() {
	next := l.graph.Canonical()
	if next == l.tip {
		l.updateFinality()
		return
	}
	old := l.tip
	// Who is a member of the canonical epoch may have changed: what was
	// refused for a sender that is a member again may be taken now, and
	// must be sent again.
	for _, info := range l.epochs {
		for id, sender := range info.refused {
			if next.hasMember(sender) {
				info.unrefuse(id)
			}
		}
	}
	fork := l.graph.ForkPoint(old, next)
	if fork != old {
		depth := int(old.Number - fork.Number)
		l.stats.Rollbacks++
		l.stats.MaxRollback = max(l.stats.MaxRollback, depth)
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRollback, Depth: depth, Epoch: fork.Number,
			Winner: childToward(next, fork).Committer, Loser: childToward(old, fork).Committer})
		for n := old; n != fork; n = n.parent {
			if info := l.epochs[n.ID]; info != nil && info.final {
				l.stats.QuorumFinalRollbacks++
			}
		}
		// An intent made on the branch left counts as done by any epoch
		// after the fork point on this one: its number, from the other
		// branch, may be past this branch's tip (a shorter branch won),
		// and no epoch here could show it done, so an add already done
		// was redone and made the commit carrying it invalid.
		for _, in := range l.intents {
			if in.since > fork.Number+1 {
				in.since = fork.Number + 1
				l.changes.touch()
			}
		}
	}
	l.tip = next
	l.headDirty = true
	info := l.epochs[next.ID]
	if info.opaque {
		if !l.removed {
			l.removed = true
			l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRemoved, Epoch: next.Number})
			// A removed member sends no more heads, and its last one
			// was for the branch it left: members still on that branch
			// would count it there for ever, and stay (its vote was what
			// kept them). One last head, for the newest epoch it was a
			// member of on the branch that removed it, moves its vote
			// where it now is.
			if p := next.parent; p != nil && fork != old {
				if in := l.epochs[p.ID]; in != nil && in.state != nil {
					l.publishHeadFor(p)
				}
			}
			// Only this member holds the Welcomes of its commits, and it
			// will see no more votes: the epoch that removed it was built
			// on them, so they go out now.
			for n := next.parent; n != nil; n = n.parent {
				if in := l.epochs[n.ID]; in != nil && len(in.welcomes) > 0 {
					l.out.Welcomes = append(l.out.Welcomes, in.welcomes...)
					in.welcomes = nil
					l.changes.touch()
				}
			}
		}
		return
	}
	l.removed = false
	l.membershipNotice(old, next)
	if fork != old {
		l.resend(fork)
	}
	l.updateFinality()
	if fork != old {
		l.refinalize(old, fork)
		l.refinalize(next, fork)
	}
}

// refinalize checks again whether the messages seen in the epochs from
// tip back to fork are final on the new canonical chain, after a
// rollback. A message final in an epoch of the branch left (a
// quorum-final epoch can still, rarely, lose) is final in the epoch of
// its copy here, and a copy that came while its epoch here was off the
// canonical chain counts now; updateFinality, which looks only at the
// epochs becoming final, would never look at either again (an epoch of
// this branch may have been final before the member left it).
func (l *Loop) refinalize(tip, fork *Node) {
	for n := tip; n != nil && n != fork; n = n.parent {
		for _, id := range l.byEpoch[n.ID] {
			if d := l.delivered[id]; d != nil {
				l.checkMessageFinal(id, d)
			}
		}
	}
}

func (l *Loop) membershipNotice(old, next *Node) {
	was := map[string]bool{}
	for _, m := range old.Members {
		was[m] = true
	}
	now := map[string]bool{}
	var added, removed []string
	for _, m := range next.Members {
		now[m] = true
		if !was[m] {
			added = append(added, m)
		}
	}
	for _, m := range old.Members {
		if !now[m] {
			removed = append(removed, m)
		}
	}
	if len(added)+len(removed) > 0 {
		// Who added whom: the proposer of the Add in the epoch, between
		// the two, where each added member appears (Node.adder).
		by := make([]string, len(added))
		fork := l.graph.ForkPoint(old, next)
		for i, m := range added {
			for n := next; n != nil && n != fork && n.parent != nil; n = n.parent {
				if n.hasMember(m) && !n.parent.hasMember(m) {
					by[i] = n.adder(m)
				}
			}
		}
		// Who asked for each removal: the Remove's sender, as the epoch
		// that removed the member recorded it.
		removedBy := make([]string, len(removed))
		for i, m := range removed {
			for n := next; n != nil && n != fork && n.parent != nil; n = n.parent {
				if by, ok := n.RemovedBy[m]; ok && !n.hasMember(m) && n.parent.hasMember(m) {
					removedBy[i] = by
				}
			}
		}
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeMembership, Epoch: next.Number, Added: added, AddedBy: by, Removed: removed, RemovedBy: removedBy})
	}
}

// onCanonical reports whether epoch id is on the canonical chain.
func (l *Loop) onCanonical(id EpochID) bool { return l.graph.IsAncestor(id, l.tip.ID) }

// DeliveredLen returns how many delivered message ids the Loop remembers
// to refuse copies of them.
func (l *Loop) DeliveredLen() int { return len(l.delivered) }
