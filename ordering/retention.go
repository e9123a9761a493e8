package ordering

import "time"

// tick runs the timers: sync timeouts, finality and retention, periodic
// key refresh, and commits.
func (l *Loop) tick() {
	for id, r := range l.requests {
		if l.now.Sub(r.sent) > l.cfg.SyncTimeout {
			delete(l.requests, id)
			l.noteUnanswered(r.to)
		}
	}
	l.maybeRejoin()
	l.askDeferred()
	l.askBackPending()
	l.askLeftOut()
	l.checkAbandoned()
	l.updateFinality()
	if l.refreshDue() {
		l.lastUpdate = l.now
		l.sentSince = 0
		l.addIntent(intentUpdate, nil, "")
	}
	l.maybeCommit()
}

// refreshDue reports whether this member should refresh its leaf now: its
// last refresh is UpdateInterval old, or it has sent UpdateAfter messages
// since.
func (l *Loop) refreshDue() bool {
	if l.removed {
		return false
	}
	return (l.cfg.UpdateInterval > 0 && l.now.Sub(l.lastUpdate) >= l.cfg.UpdateInterval) ||
		(l.cfg.UpdateAfter > 0 && int(l.sentSince) >= l.cfg.UpdateAfter)
}

// updateFinality marks epochs final on the canonical chain (quorum of
// votes, or depth Retention), finalizes their messages, and prunes what is
// deeper than Retention or older than MaxAge.
func (l *Loop) updateFinality() {
	chain := l.graph.Chain(l.tip)
	// The newest final epoch makes all its ancestors final; scan down from
	// the tip and stop at the first epoch already final.
	finalUpTo := -1
	for i := len(chain) - 1; i >= 0; i-- {
		n := chain[i]
		if info := l.epochs[n.ID]; info != nil && info.final {
			break
		}
		if int(l.tip.Number-n.Number) >= l.cfg.Retention || l.graph.QuorumFinal(n) {
			finalUpTo = i
			break
		}
	}
	if finalUpTo >= 0 && l.bundle != nil {
		// The joined epoch is final: the KeyPackage's init key is spent.
		l.bundle.DestroyInitKey()
		l.bundle, l.spare = nil, nil
	}
	for i := finalUpTo; i >= 0; i-- {
		info := l.epochs[chain[i].ID]
		if info == nil {
			continue
		}
		if info.final {
			break
		}
		info.final = true
		l.changes.touch()
		l.out.Welcomes = append(l.out.Welcomes, info.welcomes...)
		info.welcomes = nil
		for _, id := range l.byEpoch[chain[i].ID] {
			if d := l.delivered[id]; d != nil {
				l.checkMessageFinal(id, d)
			}
		}
	}
	// Prune: the new root is the newest epoch at least Retention deep or
	// replaced longer than MaxAge ago.
	var root *Node
	for i, n := range chain {
		deep := int(l.tip.Number-n.Number) >= l.cfg.Retention
		old := i+1 < len(chain) && l.now.Sub(l.epochs[chain[i+1].ID].seenAt) > l.cfg.MaxAge
		if deep || old {
			root = n
		}
	}
	if root == nil || root == l.graph.Root() {
		return
	}
	// Own messages whose epoch is now below the root on the canonical
	// chain are depth-final: they leave the outbox.
	for id, o := range l.outbox {
		if n := l.graph.Get(o.epoch); n != nil && n.Number <= root.Number && l.graph.IsAncestor(o.epoch, root.ID) {
			delete(l.outbox, id)
			l.changes.OutboxDone = append(l.changes.OutboxDone, id)
		}
	}
	l.settleIntents(root)
	for _, n := range l.graph.Prune(root) {
		l.dropEpoch(n.ID)
	}
	l.prunedBelow = root.Number
	for _, m := range l.graph.ForgetNonVoters() {
		delete(l.voteEpoch, m)
		delete(l.voteSeen, m)
		delete(l.heardSince, m)
		delete(l.heads, m)
	}
	l.forgetDelivered()
	l.forgetSent()
	l.changes.touch()
}

// forgetDelivered forgets the ids of messages delivered when the tip was
// more than Retention epochs below the pruned root: every epoch a copy of
// such a message could be protected in is gone, so no copy can be
// delivered again. The node's store forgets them by the same rule.
func (l *Loop) forgetDelivered() {
	for id, d := range l.delivered {
		if d.at+uint64(l.cfg.Retention) < l.prunedBelow {
			delete(l.delivered, id)
		}
	}
}

// dropEpoch deletes an epoch's secrets and everything kept for it.
func (l *Loop) dropEpoch(id EpochID) {
	info := l.epochs[id]
	if info == nil {
		return
	}
	if info.state != nil {
		info.state.Destroy()
	}
	delete(l.epochs, id)
	// The delivered ids stay: a copy re-sent on another branch may still
	// arrive (they are forgotten later, see forgetDelivered).
	delete(l.byEpoch, id)
	for _, e := range info.log {
		delete(l.seen, e.payload)
	}
	l.changes.DeleteEpochs = append(l.changes.DeleteEpochs, id)
}

// saveJumps saves, with the first output after a restore that publishes a
// message protected with this member's keys (not a head, which is signed),
// the snapshots of the restored epochs, whose sending ratchets jumped
// restoreSkip past the saved ones. Saved before the message leaves, a
// second crash starts past this jump: restored from the old snapshot again,
// the member would make the same jump and send on the same keys and nonces
// (a chaos run lost messages so: receivers refused them as consumed). A
// restart that sends nothing saves nothing, so that restarts in a row do
// not add jump to jump beyond what receivers accept.
func (l *Loop) saveJumps() {
	sends := false
	for _, p := range l.out.Publish {
		if len(p) > 1 && Kind(p[1]) != KindHead {
			sends = true
			break
		}
	}
	if !sends {
		return
	}
	for _, info := range l.epochs {
		if info.jumped {
			info.jumped, info.dirty, info.savedAt = false, true, time.Time{}
		}
	}
}

// flushSnapshots records the snapshots of epochs whose state changed: new
// epochs at once, others at most every SnapshotInterval (or now if force).
func (l *Loop) flushSnapshots(force bool) {
	for id, info := range l.epochs {
		if info.state == nil || !info.dirty {
			continue
		}
		if !force && !info.savedAt.IsZero() && l.now.Sub(info.savedAt) < l.cfg.SnapshotInterval && info.sentSinceSave < snapshotEvery {
			continue
		}
		snap, err := info.state.MarshalBinary()
		if err != nil {
			continue
		}
		l.changes.PutEpochs = append(l.changes.PutEpochs, SavedEpoch{ID: id, Number: info.node.Number, Snapshot: snap})
		info.savedAt, info.dirty, info.sentSinceSave = l.now, false, 0
	}
}

// Flush returns the snapshots of every epoch whose message keys changed
// since it was last saved, for a clean shutdown.
func (l *Loop) Flush(now time.Time) *Output {
	l.begin(now)
	l.flushSnapshots(true)
	return l.finish()
}
