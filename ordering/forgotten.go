package ordering

import (
	"sort"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
)

// Copies of messages whose ids were forgotten.
//
// A member forgets the id of a message it delivered once every epoch a
// copy could be protected in is gone (forgetDelivered). One sender breaks
// that rule: a member that sent a message, went away before its epoch was
// final at it, and came back after the others had pruned further than
// their retention rejoins by external commit and re-sends its whole
// outbox on the new epoch (it cannot tell which of its epochs the group
// kept). The others got the first copy long ago, and their ids of it are
// gone: without more, they would deliver it a second time.
//
// What tells them is the message's SentAt: a sender's messages say later
// and later times (Loop.send; lastSentAt survives restarts in Meta and in
// the outbox, and a rejoin), whatever its clock does, as long as its store
// is its latest (a store put back from an old copy, on a device whose
// clock is behind, would make its next messages look old). For each sender,
// named by its signature key, a member keeps the newest SentAt among the
// messages whose ids it forgot (forgot). A message whose id it does not
// know and whose SentAt is no later than that is a copy of one it
// delivered: it is taken in (logged, counted in digests, its id kept as
// delivered) but not delivered again, and never made final again.
//
// The newest SentAt of the messages delivered since is kept in spans of
// Retention tip numbers (open), each folded into forgot once its ids are
// forgotten, so a member holds a few numbers per sender, not one per
// message. A new signature key (a device set up again) starts with
// nothing: its old messages could come twice, none is ever dropped. What
// could be dropped wrongly is a message sent before another of the same
// sender that this member delivered and forgot, and reaching it only
// after that: a sender re-sends its outbox when it switches branch or
// rejoins, together with its newer messages, so that takes a copy held
// back for longer than Retention epochs while a later one got through.
//
// The spans are saved with Meta, which is written with epochs and every
// sentSlack sends, not with every delivery: after a crash a member may
// know a little less than it did, which can make a copy come twice,
// never drop one.

// sentMarks is what a member keeps of one sender's SentAt.
type sentMarks struct {
	forgot uint64
	open   []sentSpan
}

// sentSpan covers the messages of one sender delivered while the tip's
// number was from from to to: newest is the latest SentAt among them.
type sentSpan struct {
	from, to, newest uint64
}

// noteDelivered records the SentAt of a message of the sender with
// signature key key, delivered with the tip at number at.
func (l *Loop) noteDelivered(key string, at, sentAt uint64) {
	if key == "" {
		return
	}
	m := l.sentMarks[key]
	if m == nil {
		m = &sentMarks{}
		l.sentMarks[key] = m
	}
	if n := len(m.open); n > 0 && at < m.open[n-1].from+uint64(max(l.cfg.Retention, 1)) {
		s := &m.open[n-1]
		s.to, s.newest = max(s.to, at), max(s.newest, sentAt)
		return
	}
	m.open = append(m.open, sentSpan{from: at, to: at, newest: sentAt})
}

// forgottenCopy reports whether a message of the sender with signature
// key key, whose id is not known here, is a copy of one whose id was
// forgotten.
func (l *Loop) forgottenCopy(key string, sentAt uint64) bool {
	m := l.sentMarks[key]
	return m != nil && sentAt <= m.forgot
}

// forgetSent folds the spans whose ids forgetDelivered forgot (same rule)
// into forgot, and drops what is kept of keys no member of the canonical
// epoch signs with.
func (l *Loop) forgetSent() {
	keys := map[string]bool{}
	if st := l.canonicalState(); st != nil {
		for _, m := range st.Members() {
			keys[string(m.LeafNode.SignatureKey)] = true
		}
	}
	for key, m := range l.sentMarks {
		if len(keys) > 0 && !keys[key] {
			delete(l.sentMarks, key)
			continue
		}
		i := 0
		for ; i < len(m.open) && m.open[i].to+uint64(l.cfg.Retention) < l.prunedBelow; i++ {
			m.forgot = max(m.forgot, m.open[i].newest)
		}
		m.open = m.open[i:]
	}
}

// encodeSentMarks adds lastSentAt and the senders' marks to Meta.
func (l *Loop) encodeSentMarks(b *cryptobyte.Builder) {
	b.AddUint64(l.lastSentAt)
	keys := make([]string, 0, len(l.sentMarks))
	for k := range l.sentMarks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, k := range keys {
			m := l.sentMarks[k]
			codec.AddOpaque(b, []byte(k))
			b.AddUint64(m.forgot)
			codec.AddVector(b, func(b *cryptobyte.Builder) {
				for _, s := range m.open {
					b.AddUint64(s.from)
					b.AddUint64(s.to)
					b.AddUint64(s.newest)
				}
			})
		}
	})
}

// readSentMarks reads what encodeSentMarks wrote.
func (l *Loop) readSentMarks(s *cryptobyte.String) bool {
	var last uint64
	if !s.ReadUint64(&last) {
		return false
	}
	l.lastSentAt = max(l.lastSentAt, last)
	return codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var key []byte
		m := &sentMarks{}
		if !codec.ReadOpaque(s, &key) || len(key) == 0 || !s.ReadUint64(&m.forgot) {
			return false
		}
		if !codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
			var sp sentSpan
			if !s.ReadUint64(&sp.from) || !s.ReadUint64(&sp.to) || !s.ReadUint64(&sp.newest) || sp.to < sp.from {
				return false
			}
			m.open = append(m.open, sp)
			return true
		}) {
			return false
		}
		l.sentMarks[string(key)] = m
		return true
	})
}
