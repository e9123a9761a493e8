package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/parley-p2p/parley/store"
)

// A group whose state could not be saved (the disk full, an I/O error)
// stops at once: its loop in memory went past what is on disk, so nothing
// more of it may be written or acted on (writes.go). It does not stay
// stopped: after a pause it starts again from its saved state, which is
// that after some prefix of its outputs, and catches up from the other
// members on what it dropped, as after a crash. The pause doubles, from
// reopenFirst to reopenMax, while the group keeps stopping; a write that
// succeeds resets it. While the store says it has no room, the group is
// not restarted only to stop again.

const (
	reopenFirst = time.Second
	reopenMax   = 30 * time.Second
)

// halt stops the group after a failed write of its state (on the group's
// goroutine), says why in its status, and has it start again later.
func (g *groupRunner) halt(err error) {
	g.failed = true
	g.mu.Lock()
	g.view.Stopped = stopReason(err)
	g.mu.Unlock()
	g.stop()
	g.n.reopenLater(g)
}

// stopReason says in a few words why a write failed.
func stopReason(err error) string {
	if errors.Is(err, store.ErrNoSpace) {
		return "the disk is full: " + err.Error()
	}
	return "its state could not be saved: " + err.Error()
}

// stoppedErr is what a caller of a stopped group gets.
func (g *groupRunner) stoppedErr() error {
	if why := g.status().Stopped; why != "" {
		return fmt.Errorf("%w (%s); it starts again by itself", errStopped, why)
	}
	return errStopped
}

// reopenLater replaces the stopped runner old, once its goroutine ended
// and a pause passed, by a new one restored from the saved state; not if
// the group was forgotten or replaced meanwhile, or the node closes.
func (n *Node) reopenLater(old *groupRunner) {
	delay := reopenFirst
	if old.reopenDelay > 0 {
		delay = min(2*old.reopenDelay, reopenMax)
	}
	n.goBackground(func() {
		old.close()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(delay):
			}
			if n.runner(old.hexID) != old {
				return
			}
			if err := n.st.CheckSpace(); err != nil {
				old.mu.Lock()
				old.view.Stopped = stopReason(err)
				old.mu.Unlock()
				delay = min(2*delay, reopenMax)
				continue
			}
			gs := newGroupStore(n.st, old.gid, n.retention())
			loop, err := n.restoreLoop(n.ctx, old.gid, gs)
			if err != nil {
				// Read errors are not damage here: the state was readable
				// when the group started. Tried again later.
				n.log.Error("group state not read again; retrying", "group", old.hexID[:8], "err", err, "in", delay)
				delay = min(2*delay, reopenMax)
				continue
			}
			g := n.newRunner(old.gid, old.meta, loop, gs)
			g.reopenDelay = delay
			n.mu.Lock()
			if n.groups[old.hexID] != old || n.ctx.Err() != nil {
				n.mu.Unlock()
				return
			}
			n.groups[old.hexID] = g
			n.mu.Unlock()
			if err := g.start(); err != nil {
				// Only joining the topic fails, before anything runs:
				// nothing will close done but this (Close may wait on it).
				g.stop()
				close(g.done)
				n.mu.Lock()
				if n.groups[old.hexID] == g {
					n.groups[old.hexID] = old
				}
				n.mu.Unlock()
				n.log.Error("group not started again; retrying", "group", old.hexID[:8], "err", err, "in", delay)
				delay = min(2*delay, reopenMax)
				continue
			}
			n.log.Info("group started again from its saved state", "group", old.hexID[:8], "name", old.meta.Name, "epoch", loop.Tip().Number)
			n.broadcast(apiGroupEvent(g.status().Group))
			return
		}
	})
}
