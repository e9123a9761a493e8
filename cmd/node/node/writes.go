package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/store"
)

// The group's goroutine writes in rounds (issue 17). It takes an event
// from its queue, then whatever else is queued already, and the outputs of
// the received envelopes and sent messages among them are written in one
// transaction, one fsync, at the end of the round; only then are they
// acted on (published, delivered, reported to Send's caller). An idle
// group's round is one event, written at once: nothing waits for a round
// to fill; what queues during one round's fsync makes the next round.
//
// Every other output (ticks, commits asked for through the API, catch-up
// answers) is written when it is made, after the round's earlier outputs,
// as before. Outputs are written in the order they were made, so the state
// on disk is always that after some prefix of them.

// errStopped is what callers waiting on a group get when it stopped (its
// state could not be saved).
var errStopped = errors.New("node: group stopped")

const (
	// maxRound bounds the events of one round: the first waits for the
	// others to be handled before its write.
	maxRound = 64
	// roundBytes bounds the bytes a round's transaction carries (about):
	// a round that reaches it is written at once, and the next starts.
	roundBytes = 1 << 20
)

// pendingWrite is an output waiting for the end of its round.
type pendingWrite struct {
	out   *ordering.Output
	extra func(*store.Batch)
	// tip is the canonical epoch number when the output was made
	// (delivered ids are filed under it).
	tip uint64
	// then runs after the write and the output's effects, if the write
	// succeeded; done are do's callers waiting for the write.
	then func()
	done []func(error)
}

// round runs f and the functions queued behind it (at most maxRound in
// all), then writes what they left pending.
func (g *groupRunner) round(f func()) {
	g.grouping = true
	f()
drain:
	for n := 1; n < maxRound && g.ctx.Err() == nil; n++ {
		select {
		case f := <-g.in:
			f()
		default:
			break drain
		}
	}
	g.grouping = false
	g.flush()
}

// handle gives the loop an event and carries out its decisions.
func (g *groupRunner) handle(ev ordering.Event) *ordering.Output {
	out := g.loop.Handle(time.Now(), ev)
	g.apply(out)
	return out
}

// apply persists an output in one transaction, then acts on it.
func (g *groupRunner) apply(out *ordering.Output) { g.applyWith(out, nil) }

// applyWith is apply with extra changes in the same transaction; the
// round's pending outputs are written first. It reports whether the write
// succeeded (if not, the group is stopping).
func (g *groupRunner) applyWith(out *ordering.Output, extra func(*store.Batch)) bool {
	if out == nil {
		return true
	}
	g.flush()
	return g.write([]*pendingWrite{{out: out, extra: extra, tip: g.loop.Tip().Number}})
}

// applyLater is applyWith for the outputs a round groups: during a round
// the output joins the round's transaction, and its effects, then
// included, wait for the end of the round. It reports false if the output
// was written at once and the write failed.
func (g *groupRunner) applyLater(out *ordering.Output, extra func(*store.Batch), then func()) bool {
	if !g.grouping {
		ok := g.applyWith(out, extra)
		if ok && then != nil {
			then()
		}
		return ok
	}
	if g.mustFlushBefore(out) && !g.flush() {
		return false
	}
	g.pending = append(g.pending, &pendingWrite{out: out, extra: extra, tip: g.loop.Tip().Number, then: then})
	if g.pendingIDs == nil {
		g.pendingIDs = map[ordering.MessageID]bool{}
	}
	for _, d := range out.Deliveries {
		g.pendingIDs[d.ID] = true
	}
	if out.Sent != (ordering.MessageID{}) {
		g.pendingIDs[out.Sent] = true
	}
	g.pendingBytes += outputSize(out)
	if g.pendingBytes >= roundBytes || deletesEpochs(out) {
		return g.flush()
	}
	return true
}

// deletesEpochs reports whether out deletes epochs: it is written alone,
// and the indexes it changes (the log entries of the epochs, the ids
// logged) are up to date for the outputs after it.
func deletesEpochs(out *ordering.Output) bool {
	return out.Persist != nil && len(out.Persist.DeleteEpochs) > 0
}

// mustFlushBefore reports whether out must be written in a transaction
// after the pending ones: what it records depends on theirs having been
// written. Its deleted epochs take their log entries by sequence number,
// known once written; the history records it marks final are found by
// reading them.
func (g *groupRunner) mustFlushBefore(out *ordering.Output) bool {
	if len(g.pending) == 0 {
		return false
	}
	if deletesEpochs(out) {
		return true
	}
	for _, f := range out.Finalized {
		if g.pendingIDs[f.ID] {
			return true
		}
	}
	return false
}

// afterWrite calls fn with the outcome of the pending write, once made,
// or at once with nil if nothing is pending.
func (g *groupRunner) afterWrite(fn func(error)) {
	if len(g.pending) == 0 {
		fn(nil)
		return
	}
	p := g.pending[len(g.pending)-1]
	p.done = append(p.done, fn)
}

// flush writes the pending outputs and acts on them. It reports whether
// the write succeeded.
func (g *groupRunner) flush() bool {
	if len(g.pending) == 0 {
		return true
	}
	ps := g.pending
	g.pending, g.pendingIDs, g.pendingBytes = nil, nil, 0
	return g.write(ps)
}

// write persists outputs in one transaction, then acts on each in order.
// If the write fails, the group stops, nothing is acted on, and nothing
// more is written: the state on disk stays that after the outputs before
// (the loop's, in memory, went past them).
func (g *groupRunner) write(ps []*pendingWrite) bool {
	if g.failed {
		for _, p := range ps {
			for _, fn := range p.done {
				fn(errStopped)
			}
		}
		return false
	}
	if err := g.persistAll(ps); err != nil {
		g.n.log.Error("group state not saved; stopping the group until it can be", "group", g.hexID[:8], "err", err)
		g.halt(err)
		for _, p := range ps {
			for _, fn := range p.done {
				fn(fmt.Errorf("%w: %w", errStopped, err))
			}
		}
		return false
	}
	g.reopenDelay = 0
	g.writes.Add(1)
	g.outputs.Add(int64(len(ps)))
	g.n.stats.stateWrites.Add(1)
	g.n.stats.stateOutputs.Add(int64(len(ps)))
	for _, p := range ps {
		g.act(p.out)
		if p.then != nil {
			p.then()
		}
		for _, fn := range p.done {
			fn(nil)
		}
	}
	g.joinsActed()
	return true
}

// joinsActed does what the join messages of the last write left to do
// (joinshare.go).
func (g *groupRunner) joinsActed() {
	fns := g.joinsWritten
	g.joinsWritten = nil
	for _, fn := range fns {
		fn()
	}
}

// act carries out a saved output's decisions.
func (g *groupRunner) act(out *ordering.Output) {
	for _, env := range out.Publish {
		if err := g.publish(env); err != nil {
			g.n.log.Warn("publish failed", "group", g.hexID[:8], "err", err)
		}
	}
	for _, r := range out.Requests {
		g.request(r)
	}
	for _, r := range out.Responses {
		g.n.answerSync(r.ID, r.Body)
	}
	for _, w := range out.Welcomes {
		g.n.log.Debug("Welcome made", "group", g.hexID[:8], "for", w.Identity)
		g.n.sendWelcomeSoon(w.Identity, g.gid, w.Welcome)
	}
	for _, d := range out.Deliveries {
		g.delivered(d)
	}
	for _, no := range out.Notices {
		g.notice(no)
	}
	for _, e := range out.NewEpochs {
		g.n.log.Debug("epoch", "group", g.hexID[:8], "number", e.Number, "members", len(e.Members))
	}
	if len(out.Finalized) > 0 {
		g.n.log.Debug("messages final", "group", g.hexID[:8], "count", len(out.Finalized), "epoch", out.Finalized[len(out.Finalized)-1].Epoch)
	}
	for _, f := range out.Finalized {
		if seq, ok := g.finalSeqs[f.ID]; ok {
			g.n.broadcast(api.Event{Type: api.EventFinal, Group: g.hexID, Message: &api.Message{Seq: seq, ID: hex.EncodeToString(f.ID[:]), Group: g.hexID, Epoch: f.Epoch, Final: true}})
		}
	}
	// The status follows epochs and notices at once, and what is missing
	// (heads, deliveries) at least every second.
	if len(out.NewEpochs) > 0 || len(out.Notices) > 0 || time.Since(g.refreshed) >= time.Second {
		g.refresh()
	}
}

// persist writes the output's changes, the history records of its
// deliveries and final marks, and extra (the caller's own records), in
// one transaction.
func (g *groupRunner) persist(out *ordering.Output, extra func(*store.Batch)) error {
	err := g.persistAll([]*pendingWrite{{out: out, extra: extra, tip: g.loop.Tip().Number}})
	if err == nil {
		g.joinsActed()
	}
	return err
}

// persistAll writes what persist writes for each output, in order, in one
// transaction. History records already there are skipped.
func (g *groupRunner) persistAll(ps []*pendingWrite) error {
	ctx := g.n.ctx
	if ctx.Err() != nil {
		ctx = context.Background() // a closing node still saves
	}
	skip := map[string]bool{}
	hist := historyGroup(g.gid)
	joins := g.joinShares(ctx, ps)
	for attempt := 0; ; attempt++ {
		b := g.n.st.NewBatch()
		g.histHandles = map[ordering.MessageID]*store.Appended{}
		g.finalSeqs = map[ordering.MessageID]uint64{}
		// A message recorded by this write and marked final by it (both
		// copies of a fork came at once) is recorded with its last mark.
		g.histFinal = map[ordering.MessageID]uint64{}
		var markedHere []ordering.MessageID // delivered and marked: their final events
		for _, p := range ps {
			for _, f := range p.out.Finalized {
				g.histFinal[f.ID] = f.Epoch
			}
		}
		logged := map[[16]byte]bool{}
		afters := make([]func(), 0, len(ps))
		for _, p := range ps {
			out := p.out
			afters = append(afters, g.gs.record(b, out.Persist, p.tip, logged))
			for _, d := range out.Deliveries {
				if skip[skipKey(hist, d.ID[:])] || !g.showable(d.ContentType) {
					continue
				}
				rec, _ := json.Marshal(g.record(d))
				g.appendHistory(b, d.ID, rec, d.Final)
				if _, ok := g.histFinal[d.ID]; ok {
					markedHere = append(markedHere, d.ID)
				}
			}
			for _, f := range out.Finalized {
				if g.histHandles[f.ID] != nil {
					continue // recorded by this write, with its mark
				}
				r, err := g.n.st.LogByID(ctx, hist, f.ID[:])
				switch {
				case err == nil:
					b.SetLogResult(hist, r.Seq, finalResult(g.histFinal[f.ID]))
					g.finalSeqs[f.ID] = r.Seq
				case !errors.Is(err, store.ErrNotFound):
					return fmt.Errorf("marking a message final: %w", err)
				}
				// Not found: a message with no history record (a file
				// chunk), or one this write records later (a message
				// sent, recorded with the caller's changes).
			}
			g.recordAnnouncements(ctx, b, out, skip)
			if p.extra != nil {
				p.extra(b)
			}
		}
		if joins != nil {
			joins.apply(b)
		}
		if b.Len() == 0 {
			return nil
		}
		err := g.n.st.Write(ctx, b)
		var dup *store.DuplicateError
		// A duplicate entry is left out and the round written again:
		// as many times as it has entries that may be duplicates.
		if errors.As(err, &dup) && attempt < 16+b.Len() {
			skip[skipKey(dup.Group, dup.ID)] = true
			continue
		}
		if err != nil {
			return err
		}
		for _, after := range afters {
			after()
		}
		if joins != nil {
			g.joinsWritten = append(g.joinsWritten, joins.after...)
		}
		g.seqs = make(map[ordering.MessageID]uint64, len(g.histHandles))
		for id, a := range g.histHandles {
			g.seqs[id] = a.Seq()
		}
		for _, id := range markedHere {
			g.finalSeqs[id] = g.seqs[id]
		}
		return nil
	}
}

// skipKey names a log entry left out of a round's write: its log and its
// id there.
func skipKey(group, id []byte) string { return string(group) + "\x00" + string(id) }

// appendHistory records a message in the group's history (in b); its
// position is in g.seqs once b is written. A message recorded already in
// b is not recorded twice.
func (g *groupRunner) appendHistory(b *store.Batch, id ordering.MessageID, rec []byte, final bool) {
	if g.histHandles[id] != nil {
		return
	}
	var res []byte
	if epoch, ok := g.histFinal[id]; ok {
		res = finalResult(epoch) // marked final by this write
	} else if final {
		res = []byte("f") // final in the epoch it was delivered in
	}
	g.histHandles[id] = b.AppendLog(historyGroup(g.gid), store.LogEntry{ID: id[:], Envelope: rec, Result: res})
}

// outputSize is about the bytes an output's write carries.
func outputSize(out *ordering.Output) int {
	n := 0
	if c := out.Persist; c != nil {
		n += len(c.Meta)
		for _, e := range c.PutEpochs {
			n += len(e.Snapshot)
		}
		for _, e := range c.Log {
			n += len(e.Envelope)
		}
		for _, o := range c.Outbox {
			n += len(o.Record)
		}
	}
	for _, d := range out.Deliveries {
		n += 2 * len(d.Body) // the history record
	}
	return n
}
