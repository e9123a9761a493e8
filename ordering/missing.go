package ordering

// Missing is what a member knows it lacks: what the latest heads of the
// other members say exists and it does not hold.
type Missing struct {
	// Messages and Bytes are the application messages (and their
	// envelopes' bytes) that a member on this member's chain holds in
	// the epochs its head lists and this member does not: the most any
	// one member's head shows.
	Messages int
	Bytes    uint64
	// Epochs is how many epochs a member's head is ahead of this
	// member's tip, on a branch it does not hold yet.
	Epochs uint64
}

// OK reports whether nothing is known to be missing.
func (m Missing) OK() bool { return m.Messages == 0 && m.Epochs == 0 }

// headView is what a member's latest head said.
type headView struct {
	tip   EpochID
	epoch uint64
	logs  []LogDigest
	// held is how many application messages this member held, when the
	// head came, of each epoch in logs (on its own chain): what it took
	// in since, the head's sender most likely holds too (see difference).
	held []uint32
}

// noteHead keeps what a member's accepted head says, for Missing and for
// sketches of held logs.
func (l *Loop) noteHead(identity string, h *Head) {
	if l.headViews == nil {
		l.headViews = map[string]headView{}
	}
	v := headView{tip: h.Tip, epoch: h.Epoch, logs: h.Logs, held: make([]uint32, len(h.Logs))}
	if len(h.Logs) > 0 {
		oldest := h.Logs[len(h.Logs)-1].Epoch
		for n := l.tip; n != nil && n.Number >= oldest; n = n.parent {
			info := l.epochs[n.ID]
			if info == nil {
				continue
			}
			for i, d := range h.Logs {
				if d.Epoch == n.Number {
					v.held[i] = info.digest(n.Number).Count
				}
			}
		}
	}
	l.headViews[identity] = v
}

// Missing compares this member's logs with the latest head of every member
// of its tip epoch: the epochs a head lists that lie on this member's
// canonical chain, and the epochs a head is ahead by on a tip this member
// does not hold.
func (l *Loop) Missing() Missing {
	var m Missing
	if l.removed {
		return m
	}
	byNumber := map[uint64]*epochInfo{}
	for n := l.tip; n != nil; n = n.parent {
		if info := l.epochs[n.ID]; info != nil {
			byNumber[n.Number] = info
		}
	}
	for _, id := range l.tip.Members {
		v, ok := l.headViews[id]
		if !ok || id == l.self {
			continue
		}
		if l.graph.Get(v.tip) == nil {
			if v.epoch > l.tip.Number {
				m.Epochs = max(m.Epochs, v.epoch-l.tip.Number)
			}
			continue
		}
		// Only a head on this member's chain (its tip an ancestor of
		// this member's, or a descendant) speaks of the same epochs.
		if !l.graph.IsAncestor(v.tip, l.tip.ID) && !l.graph.IsAncestor(l.tip.ID, v.tip) {
			continue
		}
		msgs, bytes := 0, uint64(0)
		for _, d := range v.logs {
			info := byNumber[d.Epoch]
			if info == nil {
				continue
			}
			mine := info.digest(d.Epoch)
			if d.Count <= mine.Count {
				continue
			}
			msgs += int(d.Count - mine.Count)
			if d.Bytes > info.appBytes {
				bytes += d.Bytes - info.appBytes
			}
		}
		if msgs > m.Messages {
			m.Messages, m.Bytes = msgs, bytes
		}
	}
	return m
}
