package ordering

import (
	"crypto/sha256"
	"fmt"

	"github.com/parley-p2p/parley/mls/codec"
)

// Archive reads back what the caller saved from Output.Persist: the
// envelopes of Changes.Log, by the SHA-256 of the envelope, and the
// records of Changes.Outbox, by message id. With an Archive in Config the
// loop keeps in memory only the envelopes and own messages of at most
// SpillSize bytes, and reads larger ones (file chunks) back when it must
// re-send one or serve it to a member catching up, so that a member does
// not hold every file of its retained epochs in memory.
//
// The loop drops a large envelope or message from memory when the next
// event begins: the caller must have saved the Output's Persist by then
// (the node stops the group if a save fails).
type Archive interface {
	Envelope(hash [32]byte) ([]byte, error)
	OutboxRecord(id MessageID) ([]byte, error)
}

// logEntry is an envelope of an epoch's log: its bytes while they are in
// memory, and what identifies them in the Archive once they are not.
type logEntry struct {
	data    []byte   // nil once spilled to the archive
	kind    Kind     // only application envelopes spill
	size    int      // len of the envelope
	hash    [32]byte // SHA-256 of the envelope, set when it spills
	payload [32]byte // MessageHash of its payload (see Loop.seen)
	// gossipAt is when the envelope reached this member other than in a
	// catch-up answer (by gossip, or sent by it), in Unix nanoseconds; 0
	// if it came in an answer or was restored. A catch-up answer leaves
	// out what gossip brought moments ago (see leftOut).
	gossipAt int64
}

func newLogEntry(kind Kind, env []byte, payload [32]byte) *logEntry {
	return &logEntry{data: env, kind: kind, size: len(env), payload: payload}
}

// spillable reports whether a log entry is dropped from memory once saved:
// a large application message. Proposals stay: a refusal carries them
// without reading back.
func (l *Loop) spillable(e *logEntry) bool {
	return e.kind == KindApplication && l.spills(e.size)
}

// spills reports whether an envelope or message of n bytes is dropped from
// memory once saved.
func (l *Loop) spills(n int) bool {
	return l.cfg.Archive != nil && n > l.cfg.SpillSize
}

// logEnvelope appends an envelope, whose payload's MessageHash is payload,
// to an epoch's log, in memory and in the changes to save. msg is the id
// of the application message it carries, if read.
func (l *Loop) logEnvelope(info *epochInfo, kind Kind, env []byte, payload [32]byte, msg MessageID) {
	e := newLogEntry(kind, env, payload)
	if !l.viaSync {
		e.gossipAt = l.now.UnixNano()
	}
	info.log = append(info.log, e)
	l.changes.Log = append(l.changes.Log, LogEntry{Epoch: info.node.ID, Envelope: env, Message: msg})
	if l.spillable(e) {
		l.toSpill = append(l.toSpill, e)
	}
}

// spill drops from memory the envelopes and messages saved by the previous
// output.
func (l *Loop) spill() {
	for _, e := range l.toSpill {
		e.hash = sha256.Sum256(e.data)
		e.data = nil
	}
	for _, o := range l.outSpill {
		o.bodyHash = sha256.Sum256(o.msg.Body)
		o.msg.Body, o.spilled = nil, true
	}
	l.toSpill, l.outSpill = nil, nil
}

// envelope returns the bytes of a log entry, from memory or the archive.
func (l *Loop) envelope(e *logEntry) ([]byte, error) {
	if e.data != nil {
		return e.data, nil
	}
	data, err := l.cfg.Archive.Envelope(e.hash)
	if err != nil {
		return nil, fmt.Errorf("ordering: reading a saved envelope: %w", err)
	}
	if sha256.Sum256(data) != e.hash {
		return nil, fmt.Errorf("ordering: the archive returned another envelope than the one saved")
	}
	return data, nil
}

// message returns an outbox message with its body, from memory or the
// archive.
func (l *Loop) message(o *outgoing) (AppMessage, error) {
	if !o.spilled {
		return o.msg, nil
	}
	rec, err := l.cfg.Archive.OutboxRecord(o.msg.ID)
	if err != nil {
		return AppMessage{}, fmt.Errorf("ordering: reading a saved message: %w", err)
	}
	var m AppMessage
	if len(rec) < 32 || codec.Unmarshal(rec[32:], &m) != nil || m.ID != o.msg.ID ||
		m.ContentType != o.msg.ContentType || m.SentAt != o.msg.SentAt || sha256.Sum256(m.Body) != o.bodyHash {
		return AppMessage{}, fmt.Errorf("ordering: the archive returned another message than the one saved")
	}
	return m, nil
}

// spillMessage marks an outbox message whose record is saved (by this
// output, or before a restart) to leave memory if it is large.
func (l *Loop) spillMessage(o *outgoing) {
	if !o.spilled && l.spills(len(o.msg.Body)) {
		l.outSpill = append(l.outSpill, o)
	}
}

// HeldBytes is the number of bytes of application envelopes and own
// messages the loop holds in memory for its retained epochs and its
// outbox.
func (l *Loop) HeldBytes() int {
	n := 0
	for _, info := range l.epochs {
		for _, e := range info.log {
			if e.kind == KindApplication {
				n += len(e.data)
			}
		}
	}
	for _, o := range l.outbox {
		n += len(o.msg.Body)
	}
	return n
}
