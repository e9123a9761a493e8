// Package sim is a deterministic network simulator for the ordering layer:
// N members, each running the real ordering.Loop over real MLS (suite 1),
// exchange envelopes through a seeded scheduler that delays, reorders,
// duplicates and drops messages (drops are retransmitted later, as gossip
// does), partitions the group and heals it, crashes members (losing all
// they had not persisted) and restarts them, and keeps members offline for
// long stretches. Time is simulated: a run is a pure function of its
// Config and seed, so any failure replays exactly.
package sim

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
)

// Config describes a scenario.
type Config struct {
	Seed    uint64
	Members int // initial members
	// MinLatency and MaxLatency bound one-way message delays.
	MinLatency, MaxLatency time.Duration
	// DropRate is the chance a message is lost on first try; it arrives
	// after RetransmitDelay more. DupRate is the chance it arrives twice.
	DropRate, DupRate float64
	RetransmitDelay   time.Duration
	// TickInterval is how often each member's timers run.
	TickInterval time.Duration
	// MessageRate is the mean number of application messages per member
	// per second; OpRate the mean membership operations (adds, removes,
	// updates) per second in the whole group.
	MessageRate, OpRate float64
	// FileRate is the mean number of files sent per second in the whole
	// group, each of a size drawn uniformly from 16 KiB to FileSize
	// (default 4 MiB) and sent as application messages of up to 256 KiB,
	// four every 100 ms, as the node sends file chunks: multi-megabyte
	// epochs for catch-up to page through.
	FileRate float64
	FileSize int
	// Duration of the active phase; then the network heals and goes quiet
	// for Quiet.
	Duration, Quiet time.Duration
	// Partitions: during each window the members are split in two.
	Partitions []Window
	// Crashes: each crashes a random member at At and restarts it at Until.
	Crashes []Window
	// Offline: each takes a random member offline (up, but cut off) for
	// the window.
	Offline []Window
	// DiscardSnapshots makes the members' stores count the bytes of epoch
	// snapshots without keeping them, which is most of a large run's
	// memory; for runs with no crash (a restart would find nothing).
	DiscardSnapshots bool
	// Ordering is the members' ordering configuration (MLS and Rand are
	// set by the simulator).
	Ordering ordering.Config
}

// Window is a span of simulated time from the start of the run.
type Window struct{ At, Until time.Duration }

// DefaultConfig is a small, lively group.
func DefaultConfig(seed uint64, members int) Config {
	return Config{
		Seed: seed, Members: members,
		MinLatency: 5 * time.Millisecond, MaxLatency: 80 * time.Millisecond,
		DropRate: 0.02, DupRate: 0.02, RetransmitDelay: 500 * time.Millisecond,
		TickInterval: 100 * time.Millisecond,
		MessageRate:  0.2, OpRate: 0.3,
		Duration: 30 * time.Second, Quiet: 60 * time.Second,
		// SpillSize 1: every application message leaves memory once saved
		// and is read back when re-sent or served, so every run tests that.
		Ordering: ordering.Config{Retention: 64, HeadKeepalive: 5 * time.Second, SyncTimeout: 3 * time.Second, SpillSize: 1},
	}
}

type event struct {
	at   time.Time
	seq  uint64
	node int
	ev   ordering.Event
	fn   func()
}

type queue []*event

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *queue) Pop() any     { old := *q; e := old[len(old)-1]; *q = old[:len(old)-1]; return e }
func (q *queue) peek() *event { return (*q)[0] }

// node is one simulated device.
type node struct {
	idx     int
	name    string
	loop    *ordering.Loop
	store   *memStore
	bundle  *group.KeyPackageBundle // for a pending invitation
	up      bool
	offline bool
	side    int // partition side
	// only, if set, are the nodes this one can reach (and be reached by).
	only map[string]bool
	// passive members send nothing and ask for no changes (tests).
	passive  bool
	member   bool
	welcomes [][]byte // Welcomes waiting for this node
	// delivered counts deliveries per message id; finalIn is the epoch
	// number each delivered or sent message was last marked final in (as
	// a node's history records it), across restarts.
	delivered map[ordering.MessageID]int
	finalIn   map[ordering.MessageID]uint64
	// missed are the epoch ranges the member reported missing when it
	// rejoined.
	missed [][2]uint64
	cfg    ordering.Config
}

// Sim runs one scenario.
type Sim struct {
	cfg  Config
	memo *ordering.SignatureMemo // heads verified once for all members
	// onHandle, if set, sees every event given to a member (tests).
	onHandle func(*node, ordering.Event)
	rng      *rand.Rand
	start    time.Time
	now      time.Time
	q        queue
	seq      uint64
	nodes    []*node
	byName   map[string]*node
	fileNo   int // files sent so far (names them)
	M        Metrics
	sent     map[ordering.MessageID]*sentMsg
	log      func(format string, args ...any)
	adds     []op
	removes  []op
	// commits maps each commit seen on the wire to its parent epoch;
	// commitsOn counts commits per parent epoch.
	commits   map[[32]byte]ordering.EpochID
	commitsOn map[ordering.EpochID]int
	// epochs holds every epoch any member saw; copies every published
	// copy of each application message.
	epochs map[ordering.EpochID]ordering.EpochInfo
	copies map[ordering.MessageID][]ordering.EpochID
	// pastCopy names, for a copy some member could not read, the members
	// that had pruned its epoch at each of its publications.
	pastCopy map[copyOf]map[string]bool
	// takenCopy names the copies a member other than their sender saved
	// in its log; strandedCopy those no other member had when their
	// sender rejoined (see noteStranded).
	takenCopy, strandedCopy map[copyOf]bool
	setupOK                 bool
}

// copyOf names one copy of a message: the message and the epoch it was
// protected in.
type copyOf struct {
	id    ordering.MessageID
	epoch ordering.EpochID
}

type sentMsg struct {
	from       string
	at         time.Time
	recipients map[string]bool // members when sent
}

// New builds a simulation; Run executes it.
func New(cfg Config) *Sim {
	s := &Sim{
		cfg:          cfg,
		rng:          rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5bd1e995)),
		start:        time.Unix(1_800_000_000, 0),
		byName:       map[string]*node{},
		sent:         map[ordering.MessageID]*sentMsg{},
		commits:      map[[32]byte]ordering.EpochID{},
		epochs:       map[ordering.EpochID]ordering.EpochInfo{},
		copies:       map[ordering.MessageID][]ordering.EpochID{},
		pastCopy:     map[copyOf]map[string]bool{},
		takenCopy:    map[copyOf]bool{},
		strandedCopy: map[copyOf]bool{},
		commitsOn:    map[ordering.EpochID]int{},
		log:          func(string, ...any) {},
		memo:         ordering.NewSignatureMemo(),
	}
	s.now = s.start
	return s
}

// SetLogger sets a trace logger.
func (s *Sim) SetLogger(f func(format string, args ...any)) { s.log = f }

// randReader is a deterministic io.Reader from the simulation's RNG.
type randReader struct{ r *rand.ChaCha8 }

func (r randReader) Read(p []byte) (int, error) { return r.r.Read(p) }

func (s *Sim) newRand() randReader {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(s.rng.Uint32())
	}
	return randReader{rand.NewChaCha8(seed)}
}

func (s *Sim) nodeConfig() ordering.Config {
	c := s.cfg.Ordering
	r := s.newRand()
	c.Rand = r
	c.Verified = s.memo
	c.MLS = &group.Config{Rand: r, SkipLifetimeCheck: false, Now: func() time.Time { return s.now }}
	return c
}

func (s *Sim) schedule(at time.Time, n int, ev ordering.Event, fn func()) {
	s.seq++
	heap.Push(&s.q, &event{at: at, seq: s.seq, node: n, ev: ev, fn: fn})
}

func (s *Sim) latency() time.Duration {
	span := s.cfg.MaxLatency - s.cfg.MinLatency
	if span <= 0 {
		return s.cfg.MinLatency
	}
	return s.cfg.MinLatency + time.Duration(s.rng.Int64N(int64(span)))
}

func (s *Sim) newNode(name string) *node {
	n := &node{idx: len(s.nodes), name: name, store: newMemStore(), up: true, delivered: map[ordering.MessageID]int{}, finalIn: map[ordering.MessageID]uint64{}, cfg: s.nodeConfig()}
	n.store.discard = s.cfg.DiscardSnapshots
	// Members read large application messages back from what they saved,
	// as a node does with file chunks (see DefaultConfig's SpillSize).
	n.cfg.Archive = n.store
	s.nodes = append(s.nodes, n)
	s.byName[name] = n
	return n
}

func (s *Sim) bundleFor(n *node) *group.KeyPackageBundle {
	r := n.cfg.Rand
	cs := suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	signer, err := cs.GenerateSignatureKey(r)
	if err != nil {
		panic(err)
	}
	b, err := group.NewKeyPackage(cs, signer, group.KeyPackageOptions{Credential: wire.NewBasicCredential([]byte(n.name)), Rand: r, Now: s.now})
	if err != nil {
		panic(err)
	}
	return b
}

// reachable reports whether a message from a can reach b now.
func (s *Sim) reachable(a, b *node) bool {
	if a.only != nil && !a.only[b.name] || b.only != nil && !b.only[a.name] {
		return false
	}
	return a.up && b.up && !a.offline && !b.offline && a.side == b.side
}

// apply carries out a loop's output for node n.
func (s *Sim) apply(n *node, out *ordering.Output) {
	if out == nil {
		return
	}
	if out.Persist != nil {
		n.store.apply(out.Persist)
		for _, l := range out.Persist.Log {
			if sm := s.sent[l.Message]; sm != nil && sm.from != n.name {
				s.takenCopy[copyOf{l.Message, l.Epoch}] = true
			}
		}
	}
	for _, env := range out.Publish {
		s.M.Envelopes++
		s.M.Bytes += len(env)
		if e, err := ordering.DecodeEnvelope(env); err == nil {
			switch e.Kind {
			case ordering.KindHead:
				s.M.HeadBytes += len(env)
			case ordering.KindHandshake:
				s.noteCommit(e, len(env))
			}
		}
		for _, m := range s.nodes {
			// Gossip reaches every subscribed device, including one that
			// believes it was removed (the removal may lose).
			if m == n || m.loop == nil {
				continue
			}
			s.deliverEnvelope(n, m, env)
		}
	}
	for _, r := range out.Requests {
		s.log("%8.3fs %s: sync request %d to %s", s.now.Sub(s.start).Seconds(), n.name, r.ID, r.To)
		s.request(n, r)
	}
	for _, r := range out.Responses {
		s.log("%8.3fs %s: sync response %d to %s (%d bytes, status %d)", s.now.Sub(s.start).Seconds(), n.name, r.ID, r.To, len(r.Body), r.Body[0])
		to := s.byName[r.To]
		if to == nil {
			continue
		}
		body, id := r.Body, r.ID
		s.M.Bytes += len(body)
		s.M.SyncBytes += len(body)
		s.M.SyncAnswerBytes += len(body)
		s.schedule(s.now.Add(s.latency()), to.idx, nil, func() {
			if to.up && to.loop != nil {
				s.handle(to, ordering.SyncResponse{ID: id, Body: body})
			}
		})
	}
	for _, e := range out.NewEpochs {
		if _, ok := s.epochs[e.ID]; !ok || e.Parent != (ordering.EpochID{}) {
			s.epochs[e.ID] = e
		}
	}
	for _, t := range out.Transmitted {
		s.log("%8.3fs %s: transmit %v in %v", s.now.Sub(s.start).Seconds(), n.name, t.ID, t.Epoch)
		s.copies[t.ID] = append(s.copies[t.ID], t.Epoch)
		s.notePastCopy(copyOf{t.ID, t.Epoch})
	}
	for _, d := range out.Deliveries {
		s.log("%8.3fs %s: deliver %v from %s (epoch %d)", s.now.Sub(s.start).Seconds(), n.name, d.ID, d.Sender, d.Epoch)
	}
	for _, w := range out.Welcomes {
		to := s.byName[w.Identity]
		if to == nil {
			continue
		}
		welcome := w.Welcome
		s.schedule(s.now.Add(s.latency()), to.idx, nil, func() {
			if to.loop != nil {
				s.handle(to, ordering.WelcomeIn{Welcome: welcome})
				return
			}
			to.welcomes = append(to.welcomes, welcome)
			s.tryJoin(to)
		})
	}
	for _, d := range out.Deliveries {
		n.delivered[d.ID]++
		if d.Final {
			n.finalIn[d.ID] = d.Epoch
		}
		if sm := s.sent[d.ID]; sm != nil {
			s.M.latencies = append(s.M.latencies, s.now.Sub(sm.at))
		}
	}
	for _, f := range out.Finalized {
		n.finalIn[f.ID] = f.Epoch
	}
	for _, no := range out.Notices {
		s.log("%8.3fs %s: notice %d %+v", s.now.Sub(s.start).Seconds(), n.name, no.Kind, no)
		switch no.Kind {
		case ordering.NoticeRollback:
			s.M.Rollbacks++
			s.M.MaxRollback = max(s.M.MaxRollback, no.Depth)
			if no.Winner != "" && no.Loser != "" && no.Winner != no.Loser {
				s.M.RollbacksNamed++
			}
		case ordering.NoticeRejoined:
			s.noteStranded(n)
			s.M.Rejoins++
			s.M.Missed = append(s.M.Missed, [2]uint64{no.MissedFrom, no.MissedTo})
			n.missed = append(n.missed, [2]uint64{no.MissedFrom, no.MissedTo})
		case ordering.NoticeRemoved:
			n.member = false
		}
	}
}

// deliverEnvelope schedules an envelope from a to b with the network's
// faults.
func (s *Sim) deliverEnvelope(a, b *node, env []byte) {
	if !s.reachable(a, b) {
		return // gossip does not buffer across a partition; catch-up heals it
	}
	at := s.now.Add(s.latency())
	if s.rng.Float64() < s.cfg.DropRate {
		at = at.Add(s.cfg.RetransmitDelay)
	}
	copies := 1
	if s.rng.Float64() < s.cfg.DupRate {
		copies = 2
	}
	for range copies {
		from := a.name
		s.schedule(at, b.idx, nil, func() {
			if b.up && b.loop != nil && !b.offline {
				s.handle(b, ordering.Inbound{From: from, Data: env})
			}
		})
		at = at.Add(s.latency())
	}
}

// request carries a catch-up request and its response.
func (s *Sim) request(n *node, r ordering.OutRequest) {
	to := s.byName[r.To]
	id, body := r.ID, r.Body
	s.M.Bytes += len(body)
	s.M.SyncBytes += len(body)
	if to == nil || !s.reachable(n, to) || to.loop == nil {
		s.schedule(s.now.Add(s.cfg.Ordering.SyncTimeout), n.idx, nil, func() {
			if n.up && n.loop != nil {
				s.handle(n, ordering.SyncResponse{ID: id, Err: fmt.Errorf("unreachable")})
			}
		})
		return
	}
	from := n.name
	s.schedule(s.now.Add(s.latency()), to.idx, nil, func() {
		if to.up && to.loop != nil {
			s.handle(to, ordering.SyncRequest{From: from, ID: id, Body: body})
		}
	})
}

// handle feeds an event to a node's loop and applies the output.
func (s *Sim) handle(n *node, ev ordering.Event) {
	if n.loop == nil {
		return
	}
	if s.onHandle != nil {
		s.onHandle(n, ev)
	}
	before, cost := n.loop.Stats().SyncNewBytes, n.loop.Stats().Sync
	out := n.loop.Handle(s.now, ev)
	s.M.SyncMissed += n.loop.Stats().SyncNewBytes - before
	s.M.Sync = s.M.Sync.Add(n.loop.Stats().Sync.Sub(cost))
	s.apply(n, out)
	n.member = !n.loop.Removed()
}

// tryJoin joins a node from a waiting Welcome.
func (s *Sim) tryJoin(n *node) {
	if n.loop != nil || !n.up || n.bundle == nil || len(n.welcomes) == 0 {
		return
	}
	for len(n.welcomes) > 0 {
		w := n.welcomes[0]
		n.welcomes = n.welcomes[1:]
		loop, out, err := ordering.Join(n.cfg, w, n.bundle, nil, s.now)
		if err != nil {
			s.log("%s: joining: %v", n.name, err)
			continue
		}
		n.loop, n.member = loop, true
		s.apply(n, out)
		s.scheduleTicks(n)
		return
	}
}

func (s *Sim) scheduleTicks(n *node) {
	loop := n.loop
	var tick func()
	tick = func() {
		if n.loop != loop || !n.up {
			return
		}
		s.handle(n, ordering.Tick{})
		s.schedule(s.now.Add(s.cfg.TickInterval), n.idx, nil, tick)
	}
	s.schedule(s.now.Add(time.Duration(s.rng.Int64N(int64(s.cfg.TickInterval)))), n.idx, nil, tick)
}

// members returns the names of the nodes that are members on their own
// canonical chain.
func (s *Sim) liveMembers() []*node {
	var out []*node
	for _, n := range s.nodes {
		if n.loop != nil && n.up && !n.loop.Removed() {
			out = append(out, n)
		}
	}
	return out
}

func sortedNames(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// keyPackageMessage encodes a bundle's KeyPackage as an MLSMessage.
func keyPackageMessage(b *group.KeyPackageBundle) []byte {
	return codec.MustMarshal(wire.NewMLSMessage(b.KeyPackage))
}

// noteCommit records a commit envelope (its content type is visible in
// both PublicMessage and PrivateMessage framing).
func (s *Sim) noteCommit(e *ordering.Envelope, size int) {
	var m wire.MLSMessage
	if codec.Unmarshal(e.Payload, &m) != nil {
		return
	}
	isCommit := (m.PublicMessage != nil && m.PublicMessage.Content.ContentType == wire.ContentCommit) ||
		(m.PrivateMessage != nil && m.PrivateMessage.ContentType == wire.ContentCommit)
	if !isCommit {
		return
	}
	h := ordering.MessageHash(e.Payload)
	if _, dup := s.commits[h]; dup {
		return
	}
	s.commits[h] = e.Epoch
	s.commitsOn[e.Epoch]++
	s.M.CommitBytes += size
}

// op is a membership change asked by a member.
type op struct{ actor, target string }

// notePastCopy records which members had pruned the epoch of a copy just
// published (a member whose loop is down is taken to hold what it held):
// only those that had at every publication of the copy are kept, and only
// copies some member could not read get an entry.
func (s *Sim) notePastCopy(c copyOf) {
	e, ok := s.epochs[c.epoch]
	if !ok {
		return
	}
	again := slices.Index(s.copies[c.id], c.epoch) < len(s.copies[c.id])-1
	was, ok := s.pastCopy[c]
	if again && !ok {
		return // every member could read an earlier publication
	}
	past := map[string]bool{}
	for _, n := range s.nodes {
		if n.loop != nil && e.Number < n.loop.Graph().Root().Number && (!again || was[n.name]) {
			past[n.name] = true
		}
	}
	if len(past) == 0 {
		delete(s.pastCopy, c)
		return
	}
	s.pastCopy[c] = past
}

// noteStranded records, as a member rejoins, the copies of its messages
// that no other member had saved: a rejoined member's history starts at
// its rejoin, it answers for no epoch before it, and re-sends what is not
// final on its new epoch. Such a copy can reach no receiver, and the
// receivers agree on the epoch of the message without it.
func (s *Sim) noteStranded(n *node) {
	for id, sm := range s.sent {
		if sm.from != n.name {
			continue
		}
		for _, e := range s.copies[id] {
			if c := (copyOf{id, e}); !s.takenCopy[c] {
				s.strandedCopy[c] = true
			}
		}
	}
}
