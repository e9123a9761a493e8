package ordering

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/wire"
)

func sortIDs(ids []MessageID) {
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
}

// send protects an application message in the canonical epoch, keeps it
// in the outbox until its epoch is final, and publishes it.
func (l *Loop) send(contentType uint16, body []byte) {
	if l.removed {
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: ErrNotMember})
		return
	}
	l.lastSentAt = max(l.lastSentAt+1, uint64(l.now.UnixMilli()))
	m := AppMessage{ID: l.randomID(), SentAt: l.lastSentAt, ContentType: contentType, Body: body}
	o := &outgoing{msg: m}
	l.outbox[m.ID] = o
	l.out.Sent, l.out.SentAt = m.ID, time.UnixMilli(int64(m.SentAt)).UTC()
	l.stats.AppSent++
	l.sentSince++
	if l.sentSince%sentSlack == 0 {
		l.changes.touch()
	}
	l.transmit(o)
	// The sender's own message is delivered to itself at once, final if
	// its epoch already is.
	d := l.delivered[m.ID]
	if d == nil {
		d = &deliveredMsg{epochs: []EpochID{o.epoch}, at: l.tip.Number}
		l.delivered[m.ID] = d
	}
	l.changes.Delivered = append(l.changes.Delivered, m.ID)
	l.checkMessageFinal(m.ID, d)
}

// transmit encrypts an outbox message in the canonical epoch and
// publishes it.
func (l *Loop) transmit(o *outgoing) {
	info := l.epochs[l.tip.ID]
	if info.state == nil {
		return
	}
	msg, err := l.message(o)
	if err != nil {
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeStorage, Err: err})
		return
	}
	enc, err := info.state.EncryptApplication(codec.MustMarshal(&msg), nil)
	if err != nil {
		l.out.Notices = append(l.out.Notices, Notice{Kind: NoticeRejected, Err: fmt.Errorf("ordering: encrypting: %w", err)})
		return
	}
	info.dirty = true
	info.sentSinceSave++
	o.epoch = l.tip.ID
	if d := l.delivered[o.msg.ID]; d != nil {
		d.epochs = append(d.epochs, o.epoch)
	}
	l.byEpoch[o.epoch] = append(l.byEpoch[o.epoch], o.msg.ID)
	env := (&Envelope{Kind: KindApplication, Epoch: l.tip.ID, Payload: enc}).Encode()
	h := MessageHash(enc)
	l.seen[h] = struct{}{}
	l.logEnvelope(info, KindApplication, env, h, o.msg.ID)
	info.noteApp(h, len(env))
	l.out.Publish = append(l.out.Publish, env)
	l.out.Transmitted = append(l.out.Transmitted, Transmission{ID: o.msg.ID, Epoch: o.epoch})
	l.changes.Outbox = append(l.changes.Outbox, OutboxEntry{ID: o.msg.ID, Record: outboxRecord(o.epoch, &msg)})
	l.spillMessage(o)
}

// resend re-protects in the new canonical epoch every outbox message last
// sent on an epoch that is no longer on the canonical chain (after a
// rollback past fork).
func (l *Loop) resend(fork *Node) {
	for _, o := range l.outboxInOrder() {
		if l.onCanonical(o.epoch) {
			continue
		}
		l.stats.Resent++
		l.transmit(o)
	}
}

// outboxInOrder returns the outbox messages in the order of their ids, so
// that what is re-sent, and the randomness it uses, does not depend on map
// order.
func (l *Loop) outboxInOrder() []*outgoing {
	ids := make([]MessageID, 0, len(l.outbox))
	for id := range l.outbox {
		ids = append(ids, id)
	}
	sortIDs(ids)
	out := make([]*outgoing, len(ids))
	for i, id := range ids {
		out[i] = l.outbox[id]
	}
	return out
}

// application handles an application message of epoch info. It reports
// whether the message is done with; one refused because its sender is not
// a member of the canonical epoch is not, since a rollback may make it
// one again.
func (l *Loop) application(from string, info *epochInfo, env *Envelope, data []byte) bool {
	var refusedSender string
	res, err := info.state.ProcessBytesWith(env.Payload, group.ProcessOptions{Accept: func(s wire.Sender, ct wire.ContentType) error {
		if leaf := info.state.Tree().Leaf(group.LeafIndex(s.Index)); ct == wire.ContentApplication && !l.isMember(leaf) {
			if leaf != nil {
				refusedSender = Identity(leaf)
			}
			return ErrSenderRemoved
		}
		return nil
	}})
	if errors.Is(err, ErrSenderRemoved) {
		l.reject(from, fmt.Errorf("application message in epoch %d: %w", info.node.Number, err))
		// Listed as held in catch-up requests, so that members who took
		// it in (before they saw the removal) do not send it again with
		// every answer.
		info.noteRefused(MessageHash(env.Payload), refusedSender, data, l.cfg.MaxRefusedKept)
		return false
	}
	if errors.Is(err, secrettree.ErrTooFarAhead) {
		// Too far past what this member has of the sender's ratchet: it
		// lacks the sender's messages in between (the sender restarted
		// and jumped while this member could not hear it). Not done with:
		// it is read when it comes again, after those.
		l.reject(from, fmt.Errorf("application message in epoch %d: %w", info.node.Number, err))
		return false
	}
	if err != nil {
		l.reject(from, fmt.Errorf("application message in epoch %d: %w", info.node.Number, err))
		// Refused for good; listed as held so that catch-up answers do
		// not bring it again.
		info.noteRefused(MessageHash(env.Payload), "", nil, 0)
		return true
	}
	info.dirty = true
	if res.ContentType != wire.ContentApplication {
		// A handshake sent under the application kind: keep the effect
		// (a proposal is cached) but do not deliver.
		return true
	}
	var m AppMessage
	if err := codec.Unmarshal(res.ApplicationData, &m); err != nil {
		l.reject(from, fmt.Errorf("application message: %w", err))
		return true
	}
	h := MessageHash(env.Payload)
	l.logEnvelope(info, KindApplication, data, h, m.ID)
	info.noteApp(h, len(data))
	l.byEpoch[env.Epoch] = append(l.byEpoch[env.Epoch], m.ID)
	d := l.delivered[m.ID]
	if d != nil {
		d.epochs = append(d.epochs, env.Epoch)
		if d.at < l.tip.Number {
			// A later copy: the id is kept as long from now on.
			d.at = l.tip.Number
			l.changes.Delivered = append(l.changes.Delivered, m.ID)
		}
		l.checkMessageFinal(m.ID, d)
		return true
	}
	d = &deliveredMsg{epochs: []EpochID{env.Epoch}, at: l.tip.Number}
	l.delivered[m.ID] = d
	l.changes.Delivered = append(l.changes.Delivered, m.ID)
	sender, key := "", ""
	if leaf := info.state.Tree().Leaf(group.LeafIndex(res.Sender.Index)); leaf != nil {
		sender, key = Identity(leaf), string(leaf.SignatureKey)
	}
	if l.forgottenCopy(key, m.SentAt) {
		// Its sender re-sent it after an absence longer than this
		// member keeps ids (forgotten.go).
		d.settled = true
		l.stats.ForgottenCopies++
		return true
	}
	l.noteDelivered(key, l.tip.Number, m.SentAt)
	final := info.final && l.onCanonical(env.Epoch)
	if final {
		d.final, d.finalIn = true, env.Epoch
	}
	l.out.Deliveries = append(l.out.Deliveries, Delivery{
		ID: m.ID, Sender: sender, ContentType: m.ContentType, Body: m.Body, Epoch: info.node.Number, Final: final,
		SentAt: time.UnixMilli(int64(m.SentAt)).UTC(),
	})
	return true
}

// isMember reports whether the member at leaf (of some held epoch) is a
// member of the canonical epoch: the same identity with the same
// signature key.
func (l *Loop) isMember(leaf *wire.LeafNode) bool {
	st := l.canonicalState()
	if leaf == nil || st == nil {
		return false
	}
	li, ok := st.Tree().FindSignatureKey(leaf.SignatureKey)
	return ok && Identity(st.Tree().Leaf(li)) == Identity(leaf)
}

// checkMessageFinal marks a delivered message final once one of the epochs
// it was seen in is final on the canonical chain: the lowest, when it was
// seen in several. A message final in an epoch that then lost (a
// quorum-final epoch can still, rarely, lose) is final again, in the
// epoch of the copy re-sent on the winning branch, once that one is. A
// copy seen later in a lower final epoch of the canonical chain moves it
// there: members that saw the copies in another order agree on the epoch
// of the message.
func (l *Loop) checkMessageFinal(id MessageID, d *deliveredMsg) {
	if d.settled {
		return
	}
	var in *epochInfo
	for _, e := range d.epochs {
		if info := l.epochs[e]; info != nil && info.final && l.onCanonical(e) && (in == nil || info.node.Number < in.node.Number) {
			in = info
		}
	}
	if d.final && l.onCanonical(d.finalIn) {
		if was := l.epochs[d.finalIn]; in == nil || was == nil || was.node.Number <= in.node.Number {
			return
		}
	}
	if in == nil {
		return
	}
	// Final for the app; an own message stays in the outbox until its
	// epoch is pruned (depth-final).
	d.final, d.finalIn = true, in.node.ID
	l.out.Finalized = append(l.out.Finalized, Finalization{ID: id, Epoch: in.node.Number})
}
