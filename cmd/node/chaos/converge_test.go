package chaos

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// convergence times how long the members take to agree again after each
// heal of a partition: from the links coming up until every member that
// stays and whose daemon answers is on one epoch with one member count.
// Other faults go on meanwhile, so a heal may not converge before the
// next partition or crash: those are counted apart (after 60 s).
type convergence struct {
	mu    sync.Mutex
	took  []time.Duration
	never int
	wg    sync.WaitGroup
}

const convergenceLimit = 60 * time.Second

// heal starts timing the convergence after a heal that happened at at.
func (c *convergence) heal(h *harness, at time.Time) {
	c.wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for time.Since(at) < convergenceLimit {
			if h.upAgree() {
				c.mu.Lock()
				c.took = append(c.took, time.Since(at))
				c.mu.Unlock()
				return
			}
			<-tick.C
		}
		c.mu.Lock()
		c.never++
		c.mu.Unlock()
	})
}

// summary waits for the timings under way and sums them up.
func (c *convergence) summary() string {
	c.wg.Wait()
	if len(c.took) == 0 {
		return fmt.Sprintf("no heal converged within %v (%d heals)", convergenceLimit, c.never)
	}
	ts := slices.Clone(c.took)
	slices.Sort(ts)
	at := func(q float64) time.Duration { return ts[min(len(ts)-1, int(q*float64(len(ts))))] }
	return fmt.Sprintf("after %d heals: p50 %.1fs, p99 %.1fs, max %.1fs; %d more not within %v (another fault came first)",
		len(ts), at(0.5).Seconds(), at(0.99).Seconds(), ts[len(ts)-1].Seconds(), c.never, convergenceLimit)
}

// upAgree reports whether the members that stay and whose daemons answer
// (at least two) are on one epoch with one member count, none pending.
// It only runs CLI commands, so it may run beside the schedule.
func (h *harness) upAgree() bool {
	var epoch uint64
	members, answered := 0, 0
	for _, i := range h.stay {
		g, err := h.ds[i].group(group)
		if err != nil {
			continue
		}
		if g.Pending || g.Removed || (answered > 0 && (g.Epoch != epoch || g.Members != members)) {
			return false
		}
		epoch, members = g.Epoch, g.Members
		answered++
	}
	return answered >= 2
}
