package ordering

import (
	"fmt"
	"sort"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

// SavedEpoch is an epoch's MLS state snapshot (secret: store encrypted).
type SavedEpoch struct {
	ID       EpochID
	Number   uint64
	Snapshot []byte
}

// LogEntry is an envelope made in an epoch, kept to serve catch-up.
type LogEntry struct {
	Epoch    EpochID
	Envelope []byte
	// Message is the id of the application message the envelope carries,
	// if it was read (zero otherwise). Restore learns from it which
	// epochs a delivered message was seen in, so that it is marked final
	// when one of them becomes final after a restart.
	Message MessageID
}

// OutboxEntry is an own application message not yet final.
type OutboxEntry struct {
	ID MessageID
	// Record is the epoch id it was last sent in (32 bytes), then the
	// encoded AppMessage. (Version 1 states held the bare AppMessage and
	// listed the epochs in Meta.)
	Record []byte
}

// Changes is what the Loop asks to persist in one atomic write.
type Changes struct {
	PutEpochs    []SavedEpoch
	DeleteEpochs []EpochID
	// Meta is the Loop's own state (graph, votes, intents, counters); it
	// replaces the previous one. Nil when it did not change.
	Meta       []byte
	Log        []LogEntry
	Outbox     []OutboxEntry
	OutboxDone []MessageID
	Delivered  []MessageID
	metaDirty  bool
}

func (c *Changes) touch() { c.metaDirty = true }

// metaChanged reports whether Meta must be written: something it holds
// changed (the graph and the tip change with epochs; the rest touches).
// Log entries, delivered ids and outbox records alone leave it as it was,
// so that an application message costs a write of its own size, not of
// Meta's.
func (c *Changes) metaChanged() bool {
	return c.metaDirty || len(c.PutEpochs) > 0 || len(c.DeleteEpochs) > 0 || len(c.OutboxDone) > 0
}

// sentSlack is how often a send writes Meta for the count of messages sent
// since the last refresh; a restored member adds it to the count it reads,
// so that after a crash it refreshes early rather than late.
const sentSlack = 16

func (c *Changes) empty() bool {
	return !c.metaDirty && len(c.PutEpochs) == 0 && len(c.DeleteEpochs) == 0 && len(c.Log) == 0 &&
		len(c.Outbox) == 0 && len(c.OutboxDone) == 0 && len(c.Delivered) == 0
}

// Saved is what a member persisted, handed back to Restore after a
// restart: the latest Meta, the retained epochs' snapshots, their logs,
// the outbox and the delivered message ids of the retained epochs.
type Saved struct {
	Meta      []byte
	Epochs    []SavedEpoch
	Log       []LogEntry
	Outbox    []OutboxEntry
	Delivered []MessageID
}

// metaVersion 2 added the count of messages sent since the last refresh
// and moved the outbox's epochs from Meta into the outbox records, so that
// Meta does not grow with the outbox; a version 1 state still restores.
// Version 3 added the Welcomes of this member's commits that wait for
// their epoch to be final: kept only in memory, they were lost when the
// committer crashed before, and the members it added never joined.
//
// Version 4 added this member's lastSentAt and what it keeps of the
// senders' SentAt to tell copies of messages whose ids it forgot
// (forgotten.go).
const metaVersion = 4

// restoreSkip is how far a restored member's sending ratchets jump: more
// than the messages it may send between snapshots (a snapshot is saved
// with the output of its snapshotEvery-th send since the last, before the
// message leaves), and no more than receivers' out-of-order window (128),
// so that a receiver that hears nothing across a jump still holds the
// keys of what was sent just before it. (With jumps of 512, a receiver
// that missed a member's restarts lost the messages sent between them.)
const (
	restoreSkip   = 64
	snapshotEvery = 32
)

// encodeMeta encodes the Loop's own state.
func (l *Loop) encodeMeta() []byte {
	var b cryptobyte.Builder
	b.AddUint16(metaVersion)
	codec.AddOpaque(&b, l.groupID)
	codec.AddOpaque(&b, []byte(l.self))
	b.AddBytes(l.graph.Root().ID[:])
	b.AddBytes(l.tip.ID[:])
	b.AddUint64(l.headSeq)
	b.AddUint64(uint64(l.lastUpdate.UnixNano()))
	b.AddUint64(l.prunedBelow)
	codec.AddBool(&b, l.removed)
	b.AddUint32(l.sentSince)
	// Nodes, parents first.
	nodes := make([]*Node, 0, l.graph.Len())
	for _, info := range l.epochs {
		nodes = append(nodes, info.node)
	}
	sort.Slice(nodes, func(i, j int) bool {
		if nodes[i].Number != nodes[j].Number {
			return nodes[i].Number < nodes[j].Number
		}
		return string(nodes[i].ID[:]) < string(nodes[j].ID[:])
	})
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, n := range nodes {
			info := l.epochs[n.ID]
			b.AddBytes(n.ID[:])
			b.AddBytes(n.Parent[:])
			b.AddUint64(n.Number)
			b.AddBytes(n.CommitHash[:])
			codec.AddVector(b, func(b *cryptobyte.Builder) {
				for _, m := range n.Members {
					codec.AddOpaque(b, []byte(m))
				}
			})
			codec.AddBool(b, info.final)
			codec.AddBool(b, info.opaque)
			codec.AddBool(b, info.committed)
			b.AddUint64(uint64(info.seenAt.UnixNano()))
		}
	})
	members := make([]string, 0, len(l.graph.votes))
	for m := range l.graph.votes {
		members = append(members, m)
	}
	sort.Strings(members)
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, m := range members {
			v := l.graph.votes[m]
			codec.AddOpaque(b, []byte(m))
			b.AddUint64(v.Seq)
			b.AddBytes(v.Tip[:])
			b.AddUint64(l.voteEpoch[m])
		}
	})
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, in := range l.intents {
			b.AddUint64(in.id)
			b.AddUint8(uint8(in.kind))
			codec.AddOpaque(b, in.keyPackage)
			codec.AddOpaque(b, []byte(in.identity))
			codec.AddOpaque(b, in.baseKey)
			b.AddBytes(in.proposedIn[:])
			b.AddUint64(in.since)
			codec.AddBool(b, in.reissue)
		}
	})
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, n := range nodes {
			info := l.epochs[n.ID]
			if len(info.welcomes) == 0 {
				continue
			}
			b.AddBytes(n.ID[:])
			codec.AddVector(b, func(b *cryptobyte.Builder) {
				for _, w := range info.welcomes {
					codec.AddOpaque(b, []byte(w.Identity))
					codec.AddOpaque(b, w.KeyPackageRef)
					codec.AddOpaque(b, w.Welcome)
				}
			})
		}
	})
	l.encodeSentMarks(&b)
	return b.BytesOrPanic()
}

// outboxRecord encodes an outbox message for the store: the epoch it was
// last sent in, then the message.
func outboxRecord(epoch EpochID, m *AppMessage) []byte {
	return append(epoch[:], codec.MustMarshal(m)...)
}

// Restore rebuilds a member's Loop from what it saved. Epoch snapshots
// whose epoch is missing from the graph are ignored; graph nodes whose
// snapshot is missing are kept as history without a state.
func Restore(cfg Config, saved *Saved, now time.Time) (*Loop, error) {
	c := cfg.withDefaults()
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrMalformedState, what) }
	s := cryptobyte.String(saved.Meta)
	var version uint16
	var groupID, self []byte
	var rootID, tipID EpochID
	var rootB, tipB []byte
	var headSeq, lastUpdate, prunedBelow uint64
	var sentSince uint32
	var removed bool
	if !s.ReadUint16(&version) || version < 1 || version > metaVersion || !codec.ReadOpaque(&s, &groupID) || !codec.ReadOpaque(&s, &self) ||
		!s.ReadBytes(&rootB, 32) || !s.ReadBytes(&tipB, 32) || !s.ReadUint64(&headSeq) || !s.ReadUint64(&lastUpdate) ||
		!s.ReadUint64(&prunedBelow) || !codec.ReadBool(&s, &removed) || (version >= 2 && !s.ReadUint32(&sentSince)) {
		return nil, bad("header")
	}
	copy(rootID[:], rootB)
	copy(tipID[:], tipB)
	states := map[EpochID]*group.State{}
	if version >= 2 {
		sentSince += sentSlack
	}
	for _, e := range saved.Epochs {
		st, err := group.Restore(c.MLS, e.Snapshot)
		if err != nil {
			return nil, fmt.Errorf("%w: epoch %d: %w", ErrMalformedState, e.Number, err)
		}
		// The snapshot may predate messages this member sent: jump its
		// sending ratchets past anything it could have used since.
		if err := st.SkipOwnGenerations(restoreSkip); err != nil {
			return nil, fmt.Errorf("%w: epoch %d: %w", ErrMalformedState, e.Number, err)
		}
		states[e.ID] = st
	}
	l := &Loop{
		cfg: c, groupID: append([]byte(nil), groupID...), self: string(self),
		epochs: map[EpochID]*epochInfo{}, outbox: map[MessageID]*outgoing{}, delivered: map[MessageID]*deliveredMsg{},
		byEpoch: map[EpochID][]MessageID{}, seen: map[[32]byte]struct{}{}, requests: map[uint64]*outstanding{},
		behindAsk: map[string]time.Time{}, voteEpoch: map[string]uint64{}, voteSeen: map[string]time.Time{}, heads: map[string][]byte{}, votesFrom: map[string]time.Time{}, now: now,
		headSeq: headSeq, lastUpdate: time.Unix(0, int64(lastUpdate)), sentSince: sentSince, removed: removed, headDirty: true,
		prunedBelow: prunedBelow, sentMarks: map[string]*sentMarks{},
	}
	ok := codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		n := &Node{}
		var id, parent, ch []byte
		info := &epochInfo{node: n}
		var seenAt uint64
		if !s.ReadBytes(&id, 32) || !s.ReadBytes(&parent, 32) || !s.ReadUint64(&n.Number) || !s.ReadBytes(&ch, 32) {
			return false
		}
		copy(n.ID[:], id)
		copy(n.Parent[:], parent)
		copy(n.CommitHash[:], ch)
		if !codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
			var m []byte
			if !codec.ReadOpaque(s, &m) {
				return false
			}
			n.Members = append(n.Members, string(m))
			return true
		}) || !codec.ReadBool(s, &info.final) || !codec.ReadBool(s, &info.opaque) ||
			!codec.ReadBool(s, &info.committed) || !s.ReadUint64(&seenAt) {
			return false
		}
		info.seenAt = time.Unix(0, int64(seenAt))
		info.state = states[n.ID]
		info.member = info.state != nil
		info.savedAt = now
		// The restored state's sending ratchets jumped restoreSkip past
		// the snapshot: see saveJumps.
		info.jumped = info.state != nil
		if n.ID == rootID {
			l.graph = NewGraph(n)
		} else if l.graph == nil || !l.graph.Add(n) {
			return false
		}
		l.epochs[n.ID] = info
		return true
	})
	if !ok || l.graph == nil || l.graph.Get(tipID) == nil {
		return nil, bad("graph")
	}
	l.tip = l.graph.Get(tipID)
	if !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		var m, tip []byte
		var v Vote
		var ve uint64
		if !codec.ReadOpaque(s, &m) || !s.ReadUint64(&v.Seq) || !s.ReadBytes(&tip, 32) || !s.ReadUint64(&ve) {
			return false
		}
		copy(v.Tip[:], tip)
		l.graph.Vote(string(m), v)
		l.voteEpoch[string(m)] = ve
		// A member whose head was saved was listening before the restart
		// (see heardSince).
		if l.heardSince == nil {
			l.heardSince = map[string]int64{}
		}
		l.heardSince[string(m)] = 0
		return true
	}) {
		return nil, bad("votes")
	}
	if !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		in := &intent{}
		var kind uint8
		var kp, identity, baseKey, proposedIn []byte
		if !s.ReadUint64(&in.id) || !s.ReadUint8(&kind) || !codec.ReadOpaque(s, &kp) || !codec.ReadOpaque(s, &identity) ||
			!codec.ReadOpaque(s, &baseKey) || !s.ReadBytes(&proposedIn, 32) || !s.ReadUint64(&in.since) || !codec.ReadBool(s, &in.reissue) {
			return false
		}
		in.kind, in.identity, in.baseKey = intentKind(kind), string(identity), append([]byte(nil), baseKey...)
		copy(in.proposedIn[:], proposedIn)
		if len(kp) > 0 {
			in.keyPackage = append([]byte(nil), kp...)
			var m wire.MLSMessage
			if codec.Unmarshal(in.keyPackage, &m) != nil || m.KeyPackage == nil {
				return false
			}
			in.kp = m.KeyPackage
		}
		l.intentSeq = max(l.intentSeq, in.id)
		l.intents = append(l.intents, in)
		return true
	}) {
		return nil, bad("intents")
	}
	if version >= 3 && !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		var id []byte
		if !s.ReadBytes(&id, 32) {
			return false
		}
		var ws []OutWelcome
		if !codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
			var identity, ref, welcome []byte
			if !codec.ReadOpaque(s, &identity) || !codec.ReadOpaque(s, &ref) || !codec.ReadOpaque(s, &welcome) {
				return false
			}
			ws = append(ws, OutWelcome{Identity: string(identity), KeyPackageRef: append([]byte(nil), ref...), Welcome: append([]byte(nil), welcome...)})
			return true
		}) {
			return false
		}
		if info := l.epochs[EpochID(id)]; info != nil {
			info.welcomes = ws
		}
		return true
	}) {
		return nil, bad("welcomes")
	}
	if version >= 4 && !l.readSentMarks(&s) {
		return nil, bad("sent marks")
	}
	if version == 1 {
		// Version 1: the outbox's ids and epochs in Meta, bare records.
		records := map[MessageID][]byte{}
		for _, o := range saved.Outbox {
			records[o.ID] = o.Record
		}
		if !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
			var id, epoch []byte
			if !s.ReadBytes(&id, 16) || !s.ReadBytes(&epoch, 32) {
				return false
			}
			var mid MessageID
			copy(mid[:], id)
			o := &outgoing{}
			copy(o.epoch[:], epoch)
			rec, ok := records[mid]
			if !ok || codec.Unmarshal(rec, &o.msg) != nil {
				return false
			}
			l.outbox[mid] = o
			l.lastSentAt = max(l.lastSentAt, o.msg.SentAt)
			return true
		}) {
			return nil, bad("outbox")
		}
	} else {
		for _, e := range saved.Outbox {
			o := &outgoing{}
			if len(e.Record) < 32 || codec.Unmarshal(e.Record[32:], &o.msg) != nil || o.msg.ID != e.ID {
				return nil, bad("outbox record")
			}
			copy(o.epoch[:], e.Record[:32])
			l.outbox[e.ID] = o
			l.lastSentAt = max(l.lastSentAt, o.msg.SentAt)
			l.spillMessage(o) // saved as this record
		}
	}
	if !s.Empty() {
		return nil, bad("trailing data")
	}
	restoredAt := prunedBelow
	if l.tip != nil {
		restoredAt = l.tip.Number
	}
	for _, id := range saved.Delivered {
		l.delivered[id] = &deliveredMsg{at: restoredAt}
	}
	for _, e := range saved.Log {
		info := l.epochs[e.Epoch]
		if info == nil {
			continue
		}
		env, err := DecodeEnvelope(e.Envelope)
		if err != nil {
			continue
		}
		le := newLogEntry(env.Kind, e.Envelope, MessageHash(env.Payload))
		info.log = append(info.log, le)
		if d := l.delivered[e.Message]; e.Message != (MessageID{}) && d != nil {
			d.epochs = append(d.epochs, e.Epoch)
			l.byEpoch[e.Epoch] = append(l.byEpoch[e.Epoch], e.Message)
		}
		if l.spillable(le) {
			l.toSpill = append(l.toSpill, le) // saved as this entry
		}
		l.seen[le.payload] = struct{}{}
		if env.Kind == KindApplication {
			// The epoch's message digest, which heads advertise for
			// anti-entropy, covers what was logged before the restart.
			info.noteApp(le.payload, le.size)
		}
		// A snapshot may predate proposals logged after it: process them
		// again so that commits referring to them still work (a proposal
		// already cached is a no-op).
		if env.Kind == KindHandshake && info.state != nil && isProposal(env.Payload) {
			_, _ = info.state.ProcessBytes(env.Payload)
		}
	}
	// A message delivered in epochs all pruned since (and not an own
	// message still to be sent) was final in one of them: a copy coming
	// now does not make it final again.
	for id, d := range l.delivered {
		if len(d.epochs) == 0 && l.outbox[id] == nil {
			d.settled = true
		}
	}
	// The commit that made each epoch is in its parent's log; find it by
	// its hash to serve catch-up again.
	byHash := map[[32]byte]*epochInfo{}
	for _, info := range l.epochs {
		if info.node.CommitHash != ([32]byte{}) {
			byHash[info.node.CommitHash] = info
		}
	}
	for _, e := range saved.Log {
		if env, err := DecodeEnvelope(e.Envelope); err == nil {
			if info := byHash[MessageHash(env.Payload)]; info != nil {
				info.commit = e.Envelope
			}
		}
	}
	if l.tip != nil && l.epochs[l.tip.ID].state == nil && !l.epochs[l.tip.ID].opaque {
		return nil, bad("no state for the tip epoch")
	}
	return l, nil
}

// isProposal reports whether an MLSMessage carries a proposal (its content
// type is visible in both framings).
func isProposal(payload []byte) bool {
	var m wire.MLSMessage
	if codec.Unmarshal(payload, &m) != nil {
		return false
	}
	switch {
	case m.PublicMessage != nil:
		return m.PublicMessage.Content.ContentType == wire.ContentProposal
	case m.PrivateMessage != nil:
		return m.PrivateMessage.ContentType == wire.ContentProposal
	}
	return false
}
