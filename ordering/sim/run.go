package sim

import (
	"bytes"
	"container/heap"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// Metrics are the figures of a run.
type Metrics struct {
	Commits, Forks int
	// CommitBytes are the commits' envelopes as first published, one
	// copy each: with Commits, a commit's size, which catch-up's cost
	// per epoch is measured against.
	CommitBytes int
	Rollbacks   int
	// RollbacksNamed are the rollbacks whose notice named both committers
	// (of the branch moved to and of the one left), distinct.
	RollbacksNamed   int
	MaxRollback      int
	Rejoins          int
	Missed           [][2]uint64
	Envelopes, Bytes int
	HeadBytes        int
	SyncBytes        int // catch-up requests and answers (part of Bytes)
	// SyncMissed counts the bytes of the envelopes that catch-up answers
	// brought and their requesters had not seen: what the members had
	// missed (SyncBytes over it is catch-up's overhead).
	SyncMissed int
	// SyncAnswerBytes is the part of SyncBytes that answers take.
	SyncAnswerBytes int
	// Sync splits the catch-up bytes by what they carry (requests by
	// field, answers by kind), summed over the members.
	Sync                 ordering.SyncCost
	AppMessages          int
	AppBytes             int           // application envelopes as first sent (one copy each)
	ConvergenceTime      time.Duration // from the last heal to agreement
	FinalEpoch           uint64
	FinalMembers         int
	Resent, Reissued     int
	QuorumFinalRollbacks int
	latencies            []time.Duration
}

// ForkRate is the share of commits that had a sibling.
func (m *Metrics) ForkRate() float64 {
	if m.Commits == 0 {
		return 0
	}
	return float64(m.Forks) / float64(m.Commits)
}

// Latency returns the p-th percentile (0-100) of delivery latency.
func (m *Metrics) Latency(p float64) time.Duration {
	if len(m.latencies) == 0 {
		return 0
	}
	l := slices.Clone(m.latencies)
	slices.Sort(l)
	i := int(math.Ceil(p/100*float64(len(l)))) - 1
	return l[max(0, min(i, len(l)-1))]
}

// Result is the outcome of a run: the metrics and any property violated.
type Result struct {
	Metrics    Metrics
	Violations []string
	// Tip is the agreed epoch id (zero if the members disagree).
	Tip ordering.EpochID
}

func (r *Result) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// Run executes the scenario and checks the properties.
func (s *Sim) Run() *Result { return s.run(nil) }

// run is Run with a script that schedules extra events once the group is
// set up.
func (s *Sim) run(script func()) *Result {
	s.setup()
	s.workload()
	s.faults()
	if script != nil {
		script()
	}
	end := s.start.Add(s.cfg.Duration)
	s.schedule(end, -1, nil, s.heal)
	healedAt := end
	s.runUntil(end.Add(s.cfg.Quiet), healedAt)
	return s.check()
}

// setup creates the group: the first member creates it and adds the
// others in one commit; the run starts once all have joined.
func (s *Sim) setup() {
	founder := s.newNode("m0")
	loop, out, err := ordering.Create(founder.cfg, []byte("sim group"), s.bundleFor(founder), s.now)
	if err != nil {
		panic(err)
	}
	founder.loop, founder.member = loop, true
	s.apply(founder, out)
	s.scheduleTicks(founder)
	for i := 1; i < s.cfg.Members; i++ {
		n := s.newNode(fmt.Sprintf("m%d", i))
		n.bundle = s.bundleFor(n)
		s.handle(founder, ordering.AddMember{KeyPackage: keyPackageMessage(n.bundle)})
	}
	deadline := s.now.Add(time.Minute)
	for s.q.Len() > 0 && s.now.Before(deadline) {
		if len(s.liveMembers()) == s.cfg.Members && s.agreed() {
			break
		}
		s.step()
	}
	s.setupOK = len(s.liveMembers()) == s.cfg.Members
	s.start = s.now
}

func (s *Sim) step() {
	e := heap.Pop(&s.q).(*event)
	if e.at.After(s.now) {
		s.now = e.at
	}
	if e.fn != nil {
		e.fn()
	}
}

// runUntil runs events up to t, recording when the members last came to
// agree after healedAt.
func (s *Sim) runUntil(t, healedAt time.Time) {
	var agreedSince time.Time
	probe := func() {}
	probe = func() {
		if s.now.Before(healedAt) {
			s.schedule(s.now.Add(100*time.Millisecond), -1, nil, probe)
			return
		}
		if s.agreed() {
			if agreedSince.IsZero() {
				agreedSince = s.now
			}
		} else {
			agreedSince = time.Time{}
		}
		s.schedule(s.now.Add(100*time.Millisecond), -1, nil, probe)
	}
	s.schedule(healedAt, -1, nil, probe)
	for s.q.Len() > 0 && !s.q.peek().at.After(t) {
		s.step()
	}
	s.now = t
	if !agreedSince.IsZero() {
		s.M.ConvergenceTime = agreedSince.Sub(healedAt)
	} else {
		s.M.ConvergenceTime = -1
	}
}

// agreed reports whether all live members are on the same epoch.
func (s *Sim) agreed() bool {
	var tip ordering.EpochID
	first := true
	for _, n := range s.liveMembers() {
		if first {
			tip, first = n.loop.Tip().ID, false
		} else if n.loop.Tip().ID != tip {
			return false
		}
	}
	return true
}

func (s *Sim) exp(rate float64) time.Duration {
	if rate <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s.rng.ExpFloat64() / rate * float64(time.Second))
}

// workload schedules application messages and membership operations.
func (s *Sim) workload() {
	end := s.start.Add(s.cfg.Duration)
	var msg func()
	msg = func() {
		if s.now.After(end) {
			return
		}
		live := s.liveMembers()
		if len(live) > 0 {
			n := live[s.rng.IntN(len(live))]
			s.send(n)
		}
		s.schedule(s.now.Add(s.exp(s.cfg.MessageRate*float64(max(1, len(s.liveMembers()))))), -1, nil, msg)
	}
	s.schedule(s.now.Add(s.exp(s.cfg.MessageRate*float64(s.cfg.Members))), -1, nil, msg)
	var op func()
	op = func() {
		if s.now.After(end) {
			return
		}
		s.operation()
		s.schedule(s.now.Add(s.exp(s.cfg.OpRate)), -1, nil, op)
	}
	s.schedule(s.now.Add(s.exp(s.cfg.OpRate)), -1, nil, op)
	if s.cfg.FileRate > 0 {
		var file func()
		file = func() {
			if s.now.After(end) {
				return
			}
			if live := s.liveMembers(); len(live) > 0 {
				s.sendFile(live[s.rng.IntN(len(live))])
			}
			s.schedule(s.now.Add(s.exp(s.cfg.FileRate)), -1, nil, file)
		}
		s.schedule(s.now.Add(s.exp(s.cfg.FileRate)), -1, nil, file)
	}
}

// fileChunk is the size of a file's application messages, as the node's.
const fileChunk = 256 << 10

// sendFile has n send a file: chunks of fileChunk bytes, four every
// 100 ms, each an application message checked like any other.
func (s *Sim) sendFile(n *node) {
	maxSize := s.cfg.FileSize
	if maxSize <= 0 {
		maxSize = 4 << 20
	}
	size := 16<<10 + s.rng.IntN(max(1, maxSize-16<<10+1))
	s.fileNo++
	name := fmt.Sprintf("%s file %d", n.name, s.fileNo)
	for i := 0; i*fileChunk < size; i++ {
		chunk := make([]byte, min(fileChunk, size-i*fileChunk))
		copy(chunk, fmt.Sprintf("%s chunk %d", name, i))
		s.schedule(s.now.Add(time.Duration(i/4)*100*time.Millisecond), -1, nil, func() { s.sendBody(n, 2, chunk) })
	}
}

func (s *Sim) send(n *node) {
	s.sendBody(n, 1, []byte(fmt.Sprintf("%s at %v", n.name, s.now.Sub(s.start))))
}

// sendBody has n send an application message.
func (s *Sim) sendBody(n *node, contentType uint16, body []byte) {
	if n.offline || !n.up || n.loop == nil || n.passive {
		return
	}
	recipients := map[string]bool{}
	for _, m := range n.loop.Tip().Members {
		if m != n.name {
			recipients[m] = true
		}
	}
	out := n.loop.Handle(s.now, ordering.SendMessage{ContentType: contentType, Body: body})
	id := out.Sent
	for _, e := range out.Publish {
		if env, err := ordering.DecodeEnvelope(e); err == nil && env.Kind == ordering.KindApplication {
			s.M.AppBytes += len(e)
		}
	}
	s.apply(n, out)
	if id != (ordering.MessageID{}) {
		s.M.AppMessages++
		s.sent[id] = &sentMsg{from: n.name, at: s.now, recipients: recipients}
	}
}

// operation has a random member add a new device, remove a member, or
// refresh its keys.
func (s *Sim) operation() {
	live := s.liveMembers()
	if len(live) == 0 {
		return
	}
	actor := live[s.rng.IntN(len(live))]
	if actor.offline || actor.passive {
		return
	}
	switch r := s.rng.IntN(10); {
	case r < 4 || len(live) <= 2: // add
		n := s.newNode(fmt.Sprintf("m%d", len(s.nodes)))
		n.bundle = s.bundleFor(n)
		s.log("%8.3fs %s: asks to add %s", s.now.Sub(s.start).Seconds(), actor.name, n.name)
		s.handle(actor, ordering.AddMember{KeyPackage: keyPackageMessage(n.bundle)})
		s.adds = append(s.adds, op{actor.name, n.name})
	case r < 7: // remove
		victims := actor.loop.Tip().Members
		v := victims[s.rng.IntN(len(victims))]
		if v == actor.name || s.byName[v] != nil && s.byName[v].passive {
			return
		}
		s.log("%8.3fs %s: asks to remove %s", s.now.Sub(s.start).Seconds(), actor.name, v)
		s.handle(actor, ordering.RemoveMember{Identity: v})
		s.removes = append(s.removes, op{actor.name, v})
	default:
		s.handle(actor, ordering.UpdateKeys{})
	}
}

// faults schedules partitions, crashes and offline periods.
func (s *Sim) faults() {
	for _, w := range s.cfg.Partitions {
		s.schedule(s.start.Add(w.At), -1, nil, func() {
			for _, n := range s.nodes {
				n.side = s.rng.IntN(2)
			}
		})
		s.schedule(s.start.Add(w.Until), -1, nil, func() {
			for _, n := range s.nodes {
				n.side = 0
			}
		})
	}
	for _, w := range s.cfg.Crashes {
		var victim *node
		s.schedule(s.start.Add(w.At), -1, nil, func() {
			live := s.liveMembers()
			if len(live) == 0 {
				return
			}
			victim = live[s.rng.IntN(len(live))]
			victim.up, victim.loop = false, nil
		})
		s.schedule(s.start.Add(w.Until), -1, nil, func() { s.restart(victim) })
	}
	for _, w := range s.cfg.Offline {
		var victim *node
		s.schedule(s.start.Add(w.At), -1, nil, func() {
			live := s.liveMembers()
			if len(live) == 0 {
				return
			}
			victim = live[s.rng.IntN(len(live))]
			victim.offline = true
		})
		s.schedule(s.start.Add(w.Until), -1, nil, func() {
			if victim != nil {
				victim.offline = false
			}
		})
	}
}

// restart brings a crashed member back from what it persisted.
func (s *Sim) restart(n *node) {
	if n == nil || n.up {
		return
	}
	n.up = true
	if n.store.meta == nil {
		s.tryJoin(n)
		return
	}
	if n.store.discard {
		panic(fmt.Sprintf("restarting %s: the run discards snapshots (Config.DiscardSnapshots)", n.name))
	}
	loop, err := ordering.Restore(n.cfg, n.store.saved(), s.now)
	if err != nil {
		panic(fmt.Sprintf("restoring %s: %v", n.name, err))
	}
	n.loop = loop
	n.member = !loop.Removed()
	s.scheduleTicks(n)
}

// heal ends all faults.
func (s *Sim) heal() {
	for _, n := range s.nodes {
		n.side, n.offline, n.only = 0, false, nil
		if !n.up {
			s.restart(n)
		}
	}
}

// check verifies the properties at the end of the run.
func (s *Sim) check() *Result {
	r := &Result{}
	if !s.setupOK {
		r.violate("setup: only %d of %d members joined", len(s.liveMembers()), s.cfg.Members)
	}
	live := s.liveMembers()
	// Convergence.
	if len(live) == 0 {
		r.violate("no live members")
		return r
	}
	ref := live[0]
	for _, n := range live[1:] {
		if n.loop.Tip().ID != ref.loop.Tip().ID {
			r.violate("convergence: %s at epoch %d (%v), %s at epoch %d (%v)", n.name, n.loop.Tip().Number, n.loop.Tip().ID, ref.name, ref.loop.Tip().Number, ref.loop.Tip().ID)
			break
		}
		if !bytes.Equal(n.loop.State().EpochAuthenticator(), ref.loop.State().EpochAuthenticator()) {
			r.violate("convergence: %s and %s disagree on the epoch authenticator", n.name, ref.name)
			break
		}
	}
	if len(r.Violations) == 0 {
		r.Tip = ref.loop.Tip().ID
	}
	finalMembers := map[string]bool{}
	for _, m := range ref.loop.Tip().Members {
		finalMembers[m] = true
	}
	// Exactly once.
	ids := make([]ordering.MessageID, 0, len(s.sent))
	for id := range s.sent {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, n := range s.nodes {
		for id, c := range n.delivered {
			if c > 1 {
				r.violate("exactly once: %s got message %v %d times", n.name, id, c)
			}
		}
	}
	// A message must reach, exactly once, every member of the canonical
	// epoch its canonical copy was sent in that is still a member at the
	// end (if its sender is too).
	canonical := map[ordering.EpochID]bool{}
	for id := ref.loop.Tip().ID; ; {
		canonical[id] = true
		e, ok := s.epochs[id]
		if !ok || e.Parent == (ordering.EpochID{}) {
			break
		}
		id = e.Parent
	}
	for _, id := range ids {
		sm := s.sent[id]
		if !finalMembers[sm.from] {
			continue
		}
		var epoch *ordering.EpochInfo
		finalIn := map[uint64]bool{} // the numbers of its canonical copies' epochs
		for _, c := range s.copies[id] {
			if canonical[c] {
				e := s.epochs[c]
				epoch = &e
				finalIn[e.Number] = true
			}
		}
		if epoch == nil {
			r.violate("exactly once: message %v from %s has no copy on the canonical chain", id, sm.from)
			continue
		}
		for _, name := range epoch.Members {
			n := s.byName[name]
			if !finalMembers[name] || n == nil || n.loop == nil || n.reportedMissing(epoch.Number) {
				continue
			}
			// Final: a message of an epoch the member holds final is
			// marked final, in the epoch of a canonical copy (not one
			// that lost), the sender's own included; a receiver, in the
			// lowest canonical copy's epoch it was a member of, so that
			// receivers agree on the epoch of a message whichever copy
			// reached them first.
			if epoch.Number <= n.loop.FinalEpoch() {
				switch e, ok := n.finalIn[id]; {
				case !ok:
					r.violate("final: %s has message %v from %s (epoch %d) not final; epoch %d is final", name, id, sm.from, epoch.Number, n.loop.FinalEpoch())
				case !finalIn[e]:
					r.violate("final: %s has message %v from %s final in epoch %d, not in its canonical copy's (%d)", name, id, sm.from, e, epoch.Number)
				case name != sm.from:
					// (A member may be final lower still: in a copy's
					// epoch of a range it reported missing, which it
					// may have seen all the same.)
					if low, ok := lowestCopy(s, id, canonical, name, n); ok && e > low {
						r.violate("final: %s has message %v from %s final in epoch %d, not in its lowest canonical copy's (%d)", name, id, sm.from, e, low)
					}
				}
			}
			if name == sm.from {
				continue
			}
			if n.delivered[id] != 1 {
				r.violate("exactly once: %s got message %v from %s (epoch %d) %d times", name, id, sm.from, epoch.Number, n.delivered[id])
			}
		}
	}
	// Intents preserved: a change asked by a member that stays a member
	// takes effect, unless another change undoes it (a removal of the
	// added device, by anyone).
	targeted := map[string]bool{}
	for _, o := range s.removes {
		targeted[o.target] = true
	}
	for _, o := range s.adds {
		if finalMembers[o.actor] && !targeted[o.target] && !finalMembers[o.target] {
			r.violate("intent: %s asked to add %s, who is not a member", o.actor, o.target)
		}
	}
	for _, o := range s.removes {
		if finalMembers[o.actor] && finalMembers[o.target] {
			r.violate("intent: %s asked to remove %s, who is still a member", o.actor, o.target)
		}
	}
	// Metrics.
	for _, n := range s.nodes {
		if n.loop == nil {
			continue
		}
		st := n.loop.Stats()
		s.M.Resent += st.Resent
		s.M.Reissued += st.Reissued
		s.M.QuorumFinalRollbacks += st.QuorumFinalRollbacks
	}
	s.M.FinalEpoch = ref.loop.Tip().Number
	s.M.FinalMembers = len(finalMembers)
	s.countForks(ref)
	r.Metrics = s.M
	return r
}

// countForks fills in the commit and fork counts from the commits seen
// on the wire.
func (s *Sim) countForks(*node) {
	s.M.Commits = len(s.commits)
	for _, n := range s.commitsOn {
		s.M.Forks += n - 1
	}
}

// lowestCopy returns the number of the lowest canonical epoch with a copy
// of message id that member name was a member of, did not report missing,
// and still held when the copy was published (false if none). A copy that
// only its sender had when it rejoined does not count (noteStranded).
func lowestCopy(s *Sim, id ordering.MessageID, canonical map[ordering.EpochID]bool, name string, n *node) (low uint64, found bool) {
	for _, c := range s.copies[id] {
		e, ok := s.epochs[c]
		cp := copyOf{id, c}
		if !ok || !canonical[c] || !slices.Contains(e.Members, name) || n.reportedMissing(e.Number) || s.pastCopy[cp][name] || s.strandedCopy[cp] && !s.takenCopy[cp] {
			continue
		}
		if !found || e.Number < low {
			low, found = e.Number, true
		}
	}
	return low, found
}

// reportedMissing reports whether the member said it missed the epoch.
func (n *node) reportedMissing(epoch uint64) bool {
	for _, m := range n.missed {
		if epoch >= m[0] && epoch <= m[1] {
			return true
		}
	}
	return false
}
