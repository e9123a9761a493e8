package chaos

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The oracle reads every daemon through the CLI and checks, for the
// members that stayed: one epoch and the right member count; every text
// and file sent (as the CLI accepted it) present exactly once, each
// sender's in the order they were sent, each message in the same epoch
// at every receiver; every file complete at every receiver with the right
// SHA-256; a status with nothing missing, nothing behind, no sync under
// way, no damage and no membership change waiting to be committed; a
// store within three times the files sent. For the
// member removed at the start (and invited back and removed again during
// the schedule): in or out of the group as the others say, nothing twice,
// and nothing sent after its final removal (or everything sent after its
// final return). Every daemon still runs, and none ends the run with more
// than twice its goroutines or heap of the start (see grownFrom).

// settle polls the oracle until it finds nothing or the quiet period
// ends; it returns the last problems found, the order problems it did
// not count (PARLEY_CHAOS_ORDER=0), and when there were none.
func (h *harness) settle() (problems, disorder []string, ok time.Time) {
	verified := map[string]bool{}
	deadline := time.Now().Add(h.cfg.quiet)
	logged := time.Now()
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		problems, disorder = h.check(verified), nil
		if !h.cfg.order {
			problems = slices.DeleteFunc(problems, func(p string) bool {
				if strings.HasPrefix(p, "[order] ") {
					disorder = append(disorder, p)
					return true
				}
				return false
			})
		}
		if len(problems) == 0 {
			return nil, disorder, time.Now()
		}
		if time.Since(logged) >= 15*time.Second {
			h.step(fmt.Sprintf("oracle: %d problems, first: %s", len(problems), problems[0]))
			logged = time.Now()
		}
		if time.Now().After(deadline) {
			return problems, disorder, time.Time{}
		}
		<-tick.C
	}
}

// check runs the oracle once. verified remembers the received files
// whose bytes were already hashed.
func (h *harness) check(verified map[string]bool) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	byKey := map[string]sent{}
	for _, s := range h.sent {
		byKey[s.key] = s
	}
	for _, d := range h.ds {
		if !d.running() {
			add("[down] %s's daemon is not running", d.name)
		}
	}
	if a := h.agreed(); a != "" {
		add("[epoch] the members that stayed do not agree: %s", a)
	}
	type sighting struct {
		member string
		epoch  uint64
	}
	first := map[string]sighting{} // by message id
	for _, i := range h.stay {
		d := h.ds[i]
		// The status is read first: what it says final, the messages
		// read after are final in.
		gs, gsErr := d.groupStatus(group)
		ms, err := d.messages(group)
		if err != nil {
			add("[cli] %v", err)
			continue
		}
		count := map[string]int{}
		// pos is a message's place in the history as read shows it:
		// in the order sent (each sender's time only increases).
		pos := map[string]int{}
		got := map[string]message{}
		for i, m := range ms {
			key := messageKey(m)
			if _, ok := byKey[key]; !ok {
				add("[unknown] %s has a message nobody sent: %s", d.name, describe(m))
				continue
			}
			count[key]++
			pos[key], got[key] = i, m
			// A message of an epoch the member holds final is final
			// (one shown as of an epoch that lost, never marked final
			// in the winner's, is not).
			if gsErr == nil && m.Epoch <= gs.FinalEpoch && !m.Final {
				add("[final] %s shows %q as of epoch %d, not final, while epoch %d is final", d.name, key, m.Epoch, gs.FinalEpoch)
			}
			// Receivers agree on the epoch of a message: the lowest
			// canonical epoch they saw a copy of it in. The sender is
			// left out: one restored from a snapshot forgets which
			// epochs its copies went into before the crash, and shows
			// the epoch of a copy it re-sent after a rollback.
			if m.Sender == d.name {
				continue
			}
			if f, ok := first[m.ID]; !ok {
				first[m.ID] = sighting{d.name, m.Epoch}
			} else if f.epoch != m.Epoch {
				add("[epoch] %q in epoch %d at %s, %d at %s", key, f.epoch, f.member, m.Epoch, d.name)
			}
		}
		for _, s := range h.sent {
			switch c := count[s.key]; {
			case c == 0:
				add("[lost] %s lacks %q from %s", d.name, s.key, h.ds[s.from].name)
				continue
			case c > 1:
				add("[dup] %s has %q %d times", d.name, s.key, c)
			}
			if s.file {
				h.checkFile(d, s, got[s.key], verified, add)
			}
		}
		h.checkOrder(d, pos, add)
		switch {
		case gsErr != nil:
			add("[cli] %v", gsErr)
		case gs.Missing != 0 || gs.MissingBytes != 0 || gs.BehindEpochs != 0 || gs.Syncing || gs.Damaged != "" || gs.State != "ok":
			add("[status] %s's status of %s is not ok: %s (%s); missing %d (%d bytes), behind %d epochs, syncing %v, damaged %q",
				d.name, group, gs.State, gs.Reason, gs.Missing, gs.MissingBytes, gs.BehindEpochs, gs.Syncing, gs.Damaged)
		}
		// Every invite and removal asked for was made, or refused at
		// once: none waits once the group has settled.
		for _, w := range gs.Waiting {
			add("[waiting] %s asked for %s %s in %s at %s; it waits to be committed", d.name, w.Change, w.Member, group, w.AskedAt.Format(time.TimeOnly))
		}
	}
	h.checkChurned(byKey, add)
	return problems
}

// checkChurned checks the member removed at the start. Out of the group
// at the end, it shows the group as removed and has nothing sent after
// everyone had its removal: after the removal at the start if it was
// never invited back, else nothing of the final texts. In the group at
// the end (invited back during the schedule), it has each final text
// exactly once. Either way it has nothing twice and nothing nobody sent.
// (What it had in between is not checked: under partitions, which
// messages a member invited and removed again may read depends on which
// epochs their senders were in.)
func (h *harness) checkChurned(byKey map[string]sent, add func(string, ...any)) {
	r := h.ds[h.removed]
	gs, err := r.groups()
	if err != nil {
		add("[cli] %v", err)
		return
	}
	i := slices.IndexFunc(gs, func(g groupInfo) bool { return g.Name == group })
	if i < 0 {
		if !h.forgotten || h.churnIn {
			add("[churn] %s has no group %s (forgotten after disk damage: %v; in the group as the others say: %v)", r.name, group, h.forgotten, h.churnIn)
		}
		return
	}
	g := gs[i]
	switch {
	case g.Damaged != "":
		add("[damaged] %s lists %s as damaged: %s", r.name, group, g.Damaged)
	case !h.churnIn && !g.Removed:
		add("[removed] %s, removed, does not show %s as removed (%+v)", r.name, group, g)
	case h.churnIn && g.Removed:
		add("[churn] %s, invited back, shows %s as removed (%+v)", r.name, group, g)
	}
	ms, err := r.messages(group)
	if err != nil {
		add("[cli] %v", err)
	}
	count := map[string]int{}
	for _, m := range ms {
		key := messageKey(m)
		s, ok := byKey[key]
		count[key]++
		switch {
		case !ok:
			add("[unknown] %s, removed, has a message nobody sent: %s", r.name, describe(m))
		case count[key] == 2:
			add("[dup] %s has %q more than once", r.name, key)
		case h.churned == 0 && s.at.After(h.removedAt):
			add("[leak] %s, removed, has %q, sent by %s %.1fs after everyone had the removal", r.name, s.key, h.ds[s.from].name, s.at.Sub(h.removedAt).Seconds())
		case !h.churnIn && !h.finalFrom.IsZero() && s.at.After(h.finalFrom):
			add("[leak] %s, removed again, has %q, sent once everyone agreed", r.name, s.key)
		}
	}
	if h.churnIn && !h.finalFrom.IsZero() {
		for _, s := range h.sent {
			if s.at.After(h.finalFrom) && count[s.key] == 0 {
				add("[lost] %s, invited back, lacks %q from %s", r.name, s.key, h.ds[s.from].name)
			}
		}
	}
}

// checkFile checks a file message at d: the right size and hash and, at
// a receiver, the complete file on disk with those bytes.
func (h *harness) checkFile(d *daemon, s sent, m message, verified map[string]bool, add func(string, ...any)) {
	f := m.File
	switch {
	case f == nil:
		add("[file] %s has %q as a text, not a file", d.name, s.key)
		return
	case f.Size != int64(s.size) || f.SHA256 != s.sum:
		add("[file] %s has %q as %d bytes with SHA-256 %s; sent %d bytes with %s", d.name, s.key, f.Size, f.SHA256, s.size, s.sum)
		return
	case h.ds[s.from] == d:
		return
	case f.Path == "":
		add("[file] %s has %q (%d bytes) incomplete: %d bytes received, no path", d.name, s.key, s.size, f.Received)
		return
	}
	id := d.name + "/" + s.key
	if verified[id] {
		return
	}
	file, err := os.Open(f.Path)
	if err != nil {
		add("[file] %s's %q: %v", d.name, s.key, err)
		return
	}
	defer file.Close()
	hash := sha256.New()
	n, err := io.Copy(hash, file)
	if sum := hex.EncodeToString(hash.Sum(nil)); err != nil || sum != s.sum || n != int64(s.size) {
		add("[file] %s's %q at %s: %d bytes with SHA-256 %s (%v); sent %d bytes with %s", d.name, s.key, f.Path, n, sum, err, s.size, s.sum)
		return
	}
	verified[id] = true
}

// checkOrder checks that each sender's messages are in d's history, as
// read shows it, in the order they were sent.
func (h *harness) checkOrder(d *daemon, pos map[string]int, add func(string, ...any)) {
	last := map[int]sent{}
	for _, s := range h.sent {
		n, ok := pos[s.key]
		if !ok {
			continue
		}
		if prev, ok := last[s.from]; ok && pos[prev.key] > n {
			add("[order] %s shows %s's %q at %d, after %q (at %d), which was sent %.1fs later",
				d.name, h.ds[s.from].name, prev.key, pos[prev.key], s.key, n, s.at.Sub(prev.at).Seconds())
		}
		last[s.from] = s
	}
}

func messageKey(m message) string {
	if m.File != nil {
		return m.File.Name
	}
	return m.Text
}

func describe(m message) string {
	return fmt.Sprintf("seq %d from %s in epoch %d: %q", m.Seq, m.Sender, m.Epoch, messageKey(m))
}

// hasAll reports whether d has every message in ss.
func (h *harness) hasAll(d *daemon, ss []sent) bool {
	ms, err := d.messages(group)
	if err != nil {
		return false
	}
	have := map[string]bool{}
	for _, m := range ms {
		have[messageKey(m)] = true
	}
	for _, s := range ss {
		if !have[s.key] {
			return false
		}
	}
	return true
}

// report logs what the run did and each daemon's state at the end, and
// fails the test for whatever went wrong while playing the schedule.
func (h *harness) report() {
	t := h.t
	texts, files, bytes := 0, 0, 0
	for _, s := range h.sent {
		if s.file {
			files++
			bytes += s.size
		} else {
			texts++
		}
	}
	t.Logf("sent and checked: %d texts, %d files (%.1f MiB); injected: %d kill -9, %d SIGTERM, %d restarts, %d partitions, %d membership changes (%d made, with the rejoins after disk damage), %d disk damages, %d lossy links, %d slow links",
		texts, files, float64(bytes)/(1<<20), h.faults[evKill], h.faults[evTerm], h.faults[evRestart], h.faults[evPartition], h.faults[evChurn], h.churned, h.damaged, h.faults[evLossy], h.faults[evSlow])
	if h.imp != nil {
		line := fmt.Sprintf("links: background loss %s each way", percent(h.imp.base.loss))
		switch lost, err := h.imp.lost(); {
		case err != nil:
			t.Errorf("reading the frames the links lost: %v", err)
		case lost != nil:
			var total int64
			for _, n := range lost {
				total += n
			}
			line += fmt.Sprintf("; frames dropped by the impairment: %d (per link: %v)", total, lost)
		}
		t.Log(line)
	}
	t.Logf("convergence %s", h.converge.summary())
	// A member holds every file it sent or received twice at most (the
	// file, and its chunks in the group's log until the epochs that
	// carried them are pruned), plus the store's own overhead.
	storeBound := int64(3*bytes) + 64<<20
	end := h.runtimeFigures()
	for i, d := range h.ds {
		role := "stayed"
		if i == h.removed {
			role = "removed"
		}
		line := fmt.Sprintf("%-6s %-7s %d starts", d.name, role, d.starts)
		if st, err := d.status(); err == nil {
			line += fmt.Sprintf(", store %.1f MiB", float64(st.StoreBytes)/(1<<20))
			if i != h.removed && st.StoreBytes > storeBound {
				t.Errorf("%s's store holds %.1f MiB, over %.1f MiB (three times the %.1f MiB of files sent, and 64 MiB)",
					d.name, float64(st.StoreBytes)/(1<<20), float64(storeBound)/(1<<20), float64(bytes)/(1<<20))
			}
			for _, g := range st.Groups {
				line += fmt.Sprintf(", epoch %d (final %d), outbox %d, %d online, %d forks, %d rollbacks",
					g.Epoch, g.FinalEpoch, g.Outbox, g.OnlinePeers, g.Forks, g.Rollbacks)
			}
		}
		line += fmt.Sprintf(", data dir %.1f MiB on disk", float64(dirSize(d.dir))/(1<<20))
		if i < len(h.baseline) && i < len(end) {
			b, e := h.baseline[i], end[i]
			line += fmt.Sprintf(", goroutines %d (%d at the start), heap %.0f MiB (%.0f)", e.goroutines, b.goroutines,
				float64(e.heap)/(1<<20), float64(b.heap)/(1<<20))
			if problem := e.grownFrom(b); problem != "" {
				t.Errorf("%s's daemon grew over the run: %s", d.name, problem)
			}
		}
		if rss := d.rss(); rss > 0 {
			line += fmt.Sprintf(", resident %.0f MiB (peak %.0f)", float64(rss)/(1<<20), float64(d.peakRSS())/(1<<20))
		}
		c := d.logCounts()
		line += fmt.Sprintf("; log: %d ERROR, %d WARN, %d messages rejected, %d panics", c.errs, c.warns, c.rejected, c.panics)
		t.Log(line)
		if c.panics > 0 {
			t.Errorf("%s's daemon panicked; log %s", d.name, d.logPath)
		}
	}
	slices.Sort(h.troubles)
	for _, tr := range slices.Compact(h.troubles) {
		t.Errorf("while playing the schedule: %s", tr)
	}
}

// dirSize is the disk space the files under dir take (as du counts it:
// badger's value logs are sparse, so their lengths overstate it).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if fi, err := e.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// tally counts problems by their [kind] prefix.
func tally(problems []string) string {
	counts := map[string]int{}
	for _, p := range problems {
		k, _, _ := strings.Cut(p, " ")
		counts[k]++
	}
	var parts []string
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// runtimeFigures is a daemon's goroutines and heap, as status reports
// them (zero when it cannot be read).
type runtimeFigures struct {
	goroutines int
	heap       uint64
}

func (h *harness) runtimeFigures() []runtimeFigures {
	out := make([]runtimeFigures, len(h.ds))
	for i, d := range h.ds {
		if st, err := d.status(); err == nil {
			out[i] = runtimeFigures{st.Goroutines, st.HeapBytes}
		}
	}
	return out
}

// grownFrom says how the figures at the end of a quiet run exceed what
// the same daemon held once the group formed, beyond what the same work
// may leave (connections, caches and files of the run come and go; a
// goroutine or buffer kept per message, per restart or per fault does
// not): more than twice the goroutines and 100 more, or more than twice
// the heap and 64 MiB more.
func (e runtimeFigures) grownFrom(b runtimeFigures) string {
	if b.goroutines == 0 || e.goroutines == 0 {
		return ""
	}
	var out []string
	if e.goroutines > 2*b.goroutines+100 {
		out = append(out, fmt.Sprintf("%d goroutines at the end, %d at the start", e.goroutines, b.goroutines))
	}
	if e.heap > 2*b.heap+64<<20 {
		out = append(out, fmt.Sprintf("%.0f MiB of heap at the end, %.0f MiB at the start", float64(e.heap)/(1<<20), float64(b.heap)/(1<<20)))
	}
	return strings.Join(out, "; ")
}
