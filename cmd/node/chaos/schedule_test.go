package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The schedule is drawn from the seed before the run starts, from a
// model of which daemons are down and which links are cut; replaying a
// seed replays the same faults and sends at the same offsets (the
// daemons' own timing still varies from run to run).

type kind int

const (
	evText kind = iota
	evFile
	evKill      // kill -9
	evTerm      // SIGTERM
	evRestart   // start a daemon stopped by evKill or evTerm
	evPartition // set the links of nodes down
	evHeal      // and up again
	evChurn     // node invites the churning member back, or removes it
	evDamage    // kill -9 the churning member, damage its store, restart it
	evLossy     // node's link loses frames (and with netem, delays them)
	evSlow      // node's link is bandwidth-limited
	evRestore   // node's link back to the background impairment

	kinds = evRestore + 1
)

func (k kind) String() string {
	return [...]string{"text", "file", "kill -9", "SIGTERM", "restart", "partition", "heal", "membership change", "disk damage",
		"lossy link", "slow link", "link restored"}[k]
}

// event is one step of the schedule.
type event struct {
	at    time.Duration // from the start of the chaos phase
	kind  kind
	node  int   // the sender, or the daemon stopped or restarted
	nodes []int // partition, heal: the daemons cut off
	size  int   // file: its size in bytes
	n     int   // texts and files: a number unique in the run
	// damage: where in the store the bytes are damaged, as a fraction
	// (of the files, then of the chosen file) drawn from the seed
	where [2]float64
	link  link // lossy, slow: the impairment
}

func (e event) String() string {
	switch e.kind {
	case evFile:
		return fmt.Sprintf("(+%.1fs) file #%d of %d bytes from %s", e.at.Seconds(), e.n, e.size, nodeName(e.node))
	case evText:
		return fmt.Sprintf("(+%.1fs) text #%d from %s", e.at.Seconds(), e.n, nodeName(e.node))
	case evChurn:
		return fmt.Sprintf("(+%.1fs) membership change by %s", e.at.Seconds(), nodeName(e.node))
	case evDamage:
		return fmt.Sprintf("(+%.1fs) disk damage at %s", e.at.Seconds(), nodeName(e.node))
	case evLossy, evSlow:
		return fmt.Sprintf("(+%.1fs) %v of %s: %v each way", e.at.Seconds(), e.kind, nodeName(e.node), e.link)
	case evRestore:
		return fmt.Sprintf("(+%.1fs) link of %s restored", e.at.Seconds(), nodeName(e.node))
	case evPartition, evHeal:
		var who []string
		for _, i := range e.nodes {
			who = append(who, nodeName(i))
		}
		return fmt.Sprintf("(+%.1fs) %v of %s", e.at.Seconds(), e.kind, strings.Join(who, ", "))
	}
	return fmt.Sprintf("(+%.1fs) %v of %s", e.at.Seconds(), e.kind, nodeName(e.node))
}

// plan draws the schedule of a run of length d, with faults only among
// the members in stay (the removed member sends nothing and is left
// alone). Restarts and heals that fall after d are kept: the harness
// runs them at once when the schedule ends. With churn, some events are
// membership changes: a member that stays invites the removed member
// back, or removes it again (the harness picks which when it plays the
// event), whatever faults are under way.
func plan(seed uint64, d time.Duration, stay []int, big, churn bool) []event {
	r := rand.New(rand.NewPCG(seed, 0x70617273))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
	downUntil := map[int]time.Duration{}
	var cutUntil time.Duration // one partition at a time
	maxDown := max(1, (len(stay)-1)/2)
	var evs []event
	n := 0
	for at := between(time.Second, 3*time.Second); at < d; at += between(500*time.Millisecond, 3*time.Second) {
		var up []int
		for _, i := range stay {
			if downUntil[i] < at {
				up = append(up, i)
			}
		}
		down := len(stay) - len(up)
		w := r.IntN(100)
		switch {
		case w < 8 && down < maxDown && len(up) > 1:
			i := up[r.IntN(len(up))]
			back := at + between(2*time.Second, 8*time.Second)
			downUntil[i] = back
			evs = append(evs, event{at: at, kind: evKill, node: i}, event{at: back, kind: evRestart, node: i})
		case w < 15 && down < maxDown && len(up) > 1:
			i := up[r.IntN(len(up))]
			back := at + between(time.Second, 5*time.Second)
			downUntil[i] = back
			evs = append(evs, event{at: at, kind: evTerm, node: i}, event{at: back, kind: evRestart, node: i})
		case w < 25 && cutUntil < at:
			cut := slices.Clone(stay)
			r.Shuffle(len(cut), func(a, b int) { cut[a], cut[b] = cut[b], cut[a] })
			cut = cut[:1+r.IntN(len(stay)/2)]
			slices.Sort(cut)
			cutUntil = at + between(10*time.Second, 40*time.Second)
			evs = append(evs, event{at: at, kind: evPartition, nodes: cut}, event{at: cutUntil, kind: evHeal, nodes: cut})
		case w < 29 && churn:
			evs = append(evs, event{at: at, kind: evChurn, node: up[r.IntN(len(up))]})
		case w < 45:
			n++
			evs = append(evs, event{at: at, kind: evFile, node: up[r.IntN(len(up))], size: fileSize(r, big), n: n})
		default:
			n++
			evs = append(evs, event{at: at, kind: evText, node: up[r.IntN(len(up))], n: n})
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int { return int(a.at - b.at) })
	return evs
}

// planDamage draws when the churning member's store is damaged: one to
// three times in a run of length d. It draws from a stream of its own, so
// that the rest of a seed's schedule is the same with and without it.
func planDamage(seed uint64, d time.Duration, node int) []event {
	r := rand.New(rand.NewPCG(seed, 0x6469736b))
	var evs []event
	for range 1 + r.IntN(3) {
		at := time.Duration(r.Int64N(int64(d)))
		evs = append(evs, event{at: at, kind: evDamage, node: node, where: [2]float64{r.Float64(), r.Float64()}})
	}
	slices.SortFunc(evs, func(a, b event) int { return int(a.at - b.at) })
	return evs
}

// planImpair draws the windows in which a member's link is lossy (1-10%
// of frames lost each way, and with netem a delay of 10-80 ms) or slow
// (1-20 Mbit/s each way), for 15-60 s, one window at a time per member
// and at most half of them (one at least) at once. Windows that end after
// d are kept, like restarts: the harness restores every link when the
// schedule ends. It draws from a stream of its own, so that the rest of a
// seed's schedule is the same with and without it.
func planImpair(seed uint64, d time.Duration, nodes []int) []event {
	r := rand.New(rand.NewPCG(seed, 0x6c696e6b))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
	until := map[int]time.Duration{}
	most := max(1, len(nodes)/2)
	var evs []event
	for at := between(5*time.Second, 15*time.Second); at < d; at += between(5*time.Second, 20*time.Second) {
		var free []int
		for _, i := range nodes {
			if until[i] < at {
				free = append(free, i)
			}
		}
		if len(nodes)-len(free) >= most {
			continue
		}
		i := free[r.IntN(len(free))]
		until[i] = at + between(15*time.Second, 60*time.Second)
		e := event{at: at, kind: evLossy, node: i}
		if r.IntN(2) == 0 {
			e.link = link{loss: 100 + r.IntN(901), delay: between(10*time.Millisecond, 80*time.Millisecond).Round(time.Millisecond)}
		} else {
			e.kind, e.link = evSlow, link{rate: 1000 + r.IntN(19001)}
		}
		evs = append(evs, e, event{at: until[i], kind: evRestore, node: i})
	}
	slices.SortStableFunc(evs, func(a, b event) int { return int(a.at - b.at) })
	return evs
}

// backgroundLoss draws the loss every link has for the whole run, so
// that every run exercises retransmission: 0.25% to 1% of frames each
// way, so 0.5% to 2% between two members. It draws from a stream of its
// own.
func backgroundLoss(seed uint64) int {
	r := rand.New(rand.NewPCG(seed, 0x6c6f7373))
	return 25 * (1 + r.IntN(4))
}

// merge merges schedules sorted by time into one.
func merge(a, b []event) []event {
	out := append(slices.Clone(a), b...)
	slices.SortStableFunc(out, func(x, y event) int { return int(x.at - y.at) })
	return out
}

// fileSize draws a file's size: some empty, most small, some of a few
// MiB, and with big one in six from 4 to 50 MiB.
func fileSize(r *rand.Rand, big bool) int {
	if big && r.IntN(6) == 0 {
		return 4<<20 + r.IntN(46<<20+1)
	}
	switch w := r.IntN(100); {
	case w < 10:
		return 0
	case w < 40:
		return 1 + r.IntN(64<<10)
	case w < 75:
		return 64<<10 + r.IntN(1<<20)
	default:
		return 1<<20 + r.IntN(3<<20+1)
	}
}

// fileData is file n's content, drawn from the seed.
func fileData(seed uint64, n, size int) []byte {
	var key [32]byte
	copy(key[:], fmt.Sprintf("parley chaos %d %d", seed, n))
	data := make([]byte, size)
	rand.NewChaCha8(key).Read(data)
	return data
}

// summary counts the events of a schedule by kind.
func summary(evs []event) string {
	counts := map[kind]int{}
	bytes := 0
	for _, e := range evs {
		counts[e.kind]++
		bytes += e.size
	}
	var parts []string
	for k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %v", counts[k], k))
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (%.1f MiB of files)", float64(bytes)/(1<<20))
}
