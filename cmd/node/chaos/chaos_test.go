// Package chaos runs real parley daemons under faults and checks what
// they end up with (issue 16).
//
// TestChaos builds the parley binary, puts N daemons each in a network
// namespace of its own on a bridge the test makes, forms a group through
// the CLI, removes one member, then plays a schedule drawn from a seed:
// texts, files, kill -9 and SIGTERM with a restart a few seconds later,
// partitions (the links of some members set down for 10-40 s), and
// lossy or slow links (a member's link losing 1-10% of its frames, or
// limited to 1-20 Mbit/s, for 15-60 s), over a low loss on every link for
// the whole run (see impair_test.go). Then it heals everything (the
// background loss stays) and, once the daemons have had a quiet period,
// reads every daemon through the CLI and checks that nothing was lost,
// duplicated, reordered, corrupted or leaked to the removed member.
//
// Run it as root (it makes network namespaces, a bridge and veths, and
// removes them when it ends; it touches no other interface):
//
//	sudo PARLEY_CHAOS=1 go test -run TestChaos -v ./cmd/node/chaos/
//
// Knobs (environment variables):
//
//	PARLEY_CHAOS=1             run the test (it is skipped otherwise)
//	PARLEY_CHAOS_SEED=N        the schedule's seed (default 1)
//	PARLEY_CHAOS_DAEMONS=N     daemons (default 5, at least 3)
//	PARLEY_CHAOS_DURATION=D    length of the schedule (default 3m)
//	PARLEY_CHAOS_BIG=1         files up to 50 MiB (default: up to 4 MiB)
//	PARLEY_CHAOS_QUIET=D       how long to wait for the daemons to agree
//	                           after the heal (default 90s)
//	PARLEY_CHAOS_CHURN=0       no membership changes in the schedule
//	                           (by default members that stay invite the
//	                           removed member back and remove it again,
//	                           whatever faults are under way)
//	PARLEY_CHAOS_DAMAGE=0      no disk damage in the schedule (by default
//	                           the removed member's store is damaged one
//	                           to three times: 64 bytes inverted in the
//	                           middle of a value log or table while the
//	                           daemon is down, see damage_test.go)
//	PARLEY_CHAOS_IMPAIR=0      no lossy or slow links in the schedule
//	PARLEY_CHAOS_LOSS=P        the share of frames every link loses each
//	                           way for the whole run, in percent (default:
//	                           0.25 to 1, drawn from the seed; 0: none)
//	PARLEY_CHAOS_UPDATE=D      each daemon refreshes its keys this often
//	                           (parley run --update-interval; default 30s,
//	                           times daemons/5 above five daemons),
//	                           so that members commit during partitions
//	                           and crashes and the ordering layer settles
//	                           the forks
//	PARLEY_CHAOS_BINARY=PATH   use this parley binary instead of building one
//	PARLEY_CHAOS_KEEP=1        keep the work directory (data, logs) even
//	                           when the test passes
//	PARLEY_CHAOS_ORDER=0       log a member's history that has a sender's
//	                           messages out of the order they were sent,
//	                           instead of failing (the history is read as
//	                           'parley read' shows it: in the order sent;
//	                           delivery itself is in arrival order)
//
// Long runs need a longer -timeout than go test's 10 minutes: about the
// duration plus 5 minutes (more with PARLEY_CHAOS_BIG=1). On failure the
// test prints the seed, the command that replays its schedule, and the
// paths of the daemons' logs. It then keeps its work directory: each
// daemon's data directory and log (stdout and stderr, across restarts),
// schedule.txt (the events drawn from the seed) and sent.txt (every text
// and file the CLI accepted: sender, time, content or SHA-256). A replay
// repeats the schedule, not the daemons' timing. Links are impaired with
// netem where the kernel has it, and elsewhere (the machines this runs on
// lack it) with nftables and tbf, which need nft; the test logs which.
package chaos

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const group = "crew"

// config is a run's knobs, read from the environment.
type config struct {
	seed     uint64
	daemons  int
	duration time.Duration
	big      bool
	quiet    time.Duration
	update   time.Duration // each daemon's --update-interval
	churn    bool          // membership changes in the schedule
	damage   bool          // disk damage of the churning member's store
	impair   bool          // lossy and slow links in the schedule
	loss     int           // every link's loss for the whole run, basis points
	lossSet  bool          // loss from PARLEY_CHAOS_LOSS, not the seed
	keep     bool
	order    bool // a sender's messages out of order fail the test
}

func readConfig(t *testing.T) config {
	t.Helper()
	c := config{seed: 1, daemons: 5, duration: 3 * time.Minute, quiet: 90 * time.Second, update: 30 * time.Second}
	var err error
	if s := os.Getenv("PARLEY_CHAOS_SEED"); s != "" {
		if c.seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("PARLEY_CHAOS_SEED: %v", err)
		}
	}
	if s := os.Getenv("PARLEY_CHAOS_DAEMONS"); s != "" {
		if c.daemons, err = strconv.Atoi(s); err != nil || c.daemons < 3 || c.daemons > 200 {
			t.Fatalf("PARLEY_CHAOS_DAEMONS=%q: want a number from 3 to 200", s)
		}
	}
	c.update = defaultUpdate(c.daemons)
	for _, d := range []struct {
		name string
		v    *time.Duration
	}{{"PARLEY_CHAOS_DURATION", &c.duration}, {"PARLEY_CHAOS_QUIET", &c.quiet}, {"PARLEY_CHAOS_UPDATE", &c.update}} {
		if s := os.Getenv(d.name); s != "" {
			if *d.v, err = time.ParseDuration(s); err != nil || *d.v <= 0 {
				t.Fatalf("%s=%q: want a positive duration", d.name, s)
			}
		}
	}
	c.big = os.Getenv("PARLEY_CHAOS_BIG") == "1"
	c.churn = os.Getenv("PARLEY_CHAOS_CHURN") != "0"
	c.damage = c.churn && os.Getenv("PARLEY_CHAOS_DAMAGE") != "0"
	c.impair = os.Getenv("PARLEY_CHAOS_IMPAIR") != "0"
	c.loss = backgroundLoss(c.seed)
	if s := os.Getenv("PARLEY_CHAOS_LOSS"); s != "" {
		p, err := strconv.ParseFloat(s, 64)
		if err != nil || p < 0 || p > 10 {
			t.Fatalf("PARLEY_CHAOS_LOSS=%q: want a percentage from 0 to 10", s)
		}
		c.loss, c.lossSet = int(math.Round(p*100)), true
	}
	c.keep = os.Getenv("PARLEY_CHAOS_KEEP") == "1"
	c.order = os.Getenv("PARLEY_CHAOS_ORDER") != "0"
	return c
}

// replay is the command that runs the same schedule again.
func (c config) replay() string {
	cmd := fmt.Sprintf("sudo PARLEY_CHAOS=1 PARLEY_CHAOS_SEED=%d PARLEY_CHAOS_DAEMONS=%d PARLEY_CHAOS_DURATION=%v", c.seed, c.daemons, c.duration)
	if c.big {
		cmd += " PARLEY_CHAOS_BIG=1"
	}
	if !c.order {
		cmd += " PARLEY_CHAOS_ORDER=0"
	}
	if !c.churn {
		cmd += " PARLEY_CHAOS_CHURN=0"
	} else if !c.damage {
		cmd += " PARLEY_CHAOS_DAMAGE=0"
	}
	if !c.impair {
		cmd += " PARLEY_CHAOS_IMPAIR=0"
	}
	if c.lossSet {
		cmd += " PARLEY_CHAOS_LOSS=" + strconv.FormatFloat(float64(c.loss)/100, 'f', -1, 64)
	}
	if c.quiet != 90*time.Second {
		cmd += fmt.Sprintf(" PARLEY_CHAOS_QUIET=%v", c.quiet)
	}
	if c.update != defaultUpdate(c.daemons) {
		cmd += fmt.Sprintf(" PARLEY_CHAOS_UPDATE=%v", c.update)
	}
	return cmd + " go test -run TestChaos -v -count=1 -timeout 60m ./cmd/node/chaos/"
}

// defaultUpdate is how often each daemon refreshes its keys by default:
// every 30 s in a group of five or fewer, and as much less often as the
// group is larger, so that the group commits a refresh about every 6 s
// at any size. At 20 daemons refreshing every 30 s the group committed
// every 1.5 s, and the oracle, reading the daemons one after another,
// never found them between two commits (seed 1 of the first long run).
func defaultUpdate(daemons int) time.Duration {
	return 30 * time.Second * time.Duration(max(5, daemons)) / 5
}

var names = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}

func nodeName(i int) string {
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("node%d", i)
}

func TestChaos(t *testing.T) {
	if os.Getenv("PARLEY_CHAOS") != "1" {
		t.Skip("chaos test: set PARLEY_CHAOS=1 and run as root (see the package comment)")
	}
	if testing.Short() {
		t.Skip("chaos test: not under -short")
	}
	if raceEnabled {
		t.Skip("chaos test: run without -race (the daemons are separate processes)")
	}
	if os.Geteuid() != 0 {
		t.Skip("chaos test: needs root for network namespaces (sudo PARLEY_CHAOS=1 go test -run TestChaos -v ./cmd/node/chaos/)")
	}
	cfg := readConfig(t)
	if dl, ok := t.Deadline(); ok {
		if need := cfg.duration + cfg.quiet + 3*time.Minute; time.Until(dl) < need {
			t.Fatalf("the test needs about %v and go test's -timeout leaves %v: pass -timeout", need.Round(time.Minute), time.Until(dl).Round(time.Second))
		}
	}
	t.Logf("seed %d, %d daemons, schedule of %v, big files %v, lossy and slow links %v, background loss %s per link each way",
		cfg.seed, cfg.daemons, cfg.duration, cfg.big, cfg.impair, percent(cfg.loss))

	work, err := os.MkdirTemp("", "parley-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, work: work, begin: time.Now(), faults: map[kind]int{}}
	t.Cleanup(func() {
		if t.Failed() || cfg.keep {
			if h.verdict != "" {
				t.Logf("what failed: %s (all of them: %s)", h.verdict, filepath.Join(work, "problems.txt"))
			}
			t.Logf("seed %d; replay with:\n\t%s", cfg.seed, cfg.replay())
			t.Logf("work directory kept: %s", work)
			for _, d := range h.ds {
				t.Logf("log of %s: %s", d.name, d.logPath)
			}
			return
		}
		os.RemoveAll(work)
	})
	h.nw = newNetwork(t, fmt.Sprintf("parley-chaos-%d", os.Getpid()), cfg.daemons)
	if cfg.impair || cfg.loss > 0 {
		h.imp = newImpairer(t, h.nw, link{loss: cfg.loss})
		t.Logf("links impaired by %s", h.imp.mechanism())
	}
	bin := parleyBinary(t, work)
	for i := range cfg.daemons {
		d := newDaemon(t, bin, work, nodeName(i), h.nw.nodes[i], h.nw.addrs[i])
		d.update = cfg.update
		h.ds = append(h.ds, d)
	}
	for _, d := range h.ds {
		if err := d.start(); err != nil {
			t.Fatal(err)
		}
	}
	h.step(fmt.Sprintf("%d daemons up, each in its namespace", cfg.daemons))

	h.formGroup()
	h.removeOne()
	h.baseline = h.runtimeFigures()
	evs := plan(cfg.seed, cfg.duration, h.stay, cfg.big, cfg.churn)
	if cfg.damage {
		evs = merge(evs, planDamage(cfg.seed, cfg.duration, h.removed))
	}
	if cfg.impair {
		all := make([]int, len(h.ds))
		for i := range all {
			all[i] = i
		}
		evs = merge(evs, planImpair(cfg.seed, cfg.duration, all))
	}
	t.Logf("schedule: %s", summary(evs))
	record(h, "schedule.txt", evs)
	h.play(evs)
	healed := time.Now()
	h.step("schedule played; all links up (with the background loss only) and all daemons running")

	problems, disorder, took := h.settle()
	if len(problems) == 0 {
		// Texts sent once everyone agrees: the churning member has them
		// if it ended in the group, and not if it ended out.
		h.finalFrom = time.Now()
		for _, i := range h.stay[:2] {
			h.sendText(i, fmt.Sprintf("final text from %s (seed %d)", h.ds[i].name, cfg.seed))
		}
		var more []string
		problems, more, _ = h.settle()
		disorder = append(disorder, more...)
		h.step(fmt.Sprintf("final texts: %d problems (the removed member is %s the group after %d membership changes)", len(problems), map[bool]string{true: "in", false: "out of"}[h.churnIn], h.churned))
	}
	for _, p := range disorder {
		t.Logf("not failing (PARLEY_CHAOS_ORDER=0): %s", p)
	}
	if len(problems) > 0 {
		for i, p := range problems {
			if i == 80 {
				t.Errorf("... and %d more problems", len(problems)-i)
				break
			}
			t.Errorf("%s", p)
		}
		t.Errorf("%d problems remain %v after the heal (seed %d): %s", len(problems), cfg.quiet, cfg.seed, tally(problems))
		// Kept in the work directory, and said again at the end of the
		// output, where a log cut to its tail still shows it.
		record(h, "problems.txt", problems)
		h.verdict = fmt.Sprintf("%d problems, %s; the first: %s", len(problems), tally(problems), problems[0])
	} else {
		h.step(fmt.Sprintf("oracle: all checks pass %.1fs after the heal", took.Sub(healed).Seconds()))
	}
	h.report()
	record(h, "sent.txt", h.sent)
}

// record writes one line per item to a file of the work directory, kept
// with the logs when the test fails.
func record[T any](h *harness, name string, items []T) {
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintln(&b, it)
	}
	if err := os.WriteFile(filepath.Join(h.work, name), []byte(b.String()), 0o600); err != nil {
		h.t.Error(err)
	}
}

// harness is the state of one run.
type harness struct {
	t     *testing.T
	cfg   config
	work  string
	begin time.Time
	// verdict sums up the oracle's problems, if any, for the end of the
	// output.
	verdict string
	nw      *network
	imp     *impairer // nil when no link is impaired
	ds      []*daemon

	stay      []int     // the members that stay in the group
	removed   int       // the member removed at the start
	removedAt time.Time // when every member that stays had the removal
	// With churn, the removed member is invited back and removed again
	// during the schedule: churnIn is whether the last change that the
	// CLI accepted invited it, churned how many were accepted, and
	// finalFrom when the texts sent after the final agreement began
	// (zero before), which it must have if it is in and must not if out.
	churnIn   bool
	churned   int
	finalFrom time.Time
	// damaged counts the disk damages played; forgotten is whether the
	// churning member forgot the group after one (the way out the daemon
	// offers) and has not been invited back since.
	damaged   int
	forgotten bool

	// baseline is each daemon's goroutines and heap once the group
	// formed, before the faults, which the end of the run is held to.
	baseline []runtimeFigures

	converge convergence
	sent     []sent
	faults   map[kind]int
	troubles []string // what went wrong while playing the schedule
}

// sent is a text or a file that a member sent, as the CLI accepted it.
type sent struct {
	from int
	key  string // the text, or the file's name
	file bool
	size int
	sum  string // the file's SHA-256, hex
	at   time.Time
}

func (s sent) String() string {
	what := fmt.Sprintf("text %q", s.key)
	if s.file {
		what = fmt.Sprintf("file %s, %d bytes, SHA-256 %s", s.key, s.size, s.sum)
	}
	return fmt.Sprintf("%s from %s: %s", s.at.Format(time.RFC3339Nano), nodeName(s.from), what)
}

func (h *harness) step(what string) {
	h.t.Logf("%7.1fs %s", time.Since(h.begin).Seconds(), what)
}

// waitUntil polls cond every half second until it holds or timeout
// passes, and reports whether it held.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// formGroup has the first daemon add the others as contacts, create the
// group and invite them, then has everyone say hello.
func (h *harness) formGroup() {
	t := h.t
	invite(h.ds[0], h.ds[1:])
	for _, d := range h.ds {
		if !waitUntil(90*time.Second, func() bool {
			g, err := d.group(group)
			return err == nil && g.Members == len(h.ds) && !g.Pending
		}) {
			t.Fatalf("%s not in %s with %d members after 90s", d.name, group, len(h.ds))
		}
	}
	h.step(fmt.Sprintf("group %s of %d formed through invitations", group, len(h.ds)))
	for i, d := range h.ds {
		h.sendText(i, fmt.Sprintf("hello from %s (seed %d)", d.name, h.cfg.seed))
	}
	for _, d := range h.ds {
		if !waitUntil(60*time.Second, func() bool { return h.hasAll(d, h.sent) }) {
			t.Fatalf("%s lacks some of the first %d texts after 60s", d.name, len(h.sent))
		}
	}
	h.step("everyone said hello and everyone has every hello")
}

// removeOne has a member remove another and waits for everyone to have
// the removal before the faults start.
func (h *harness) removeOne() {
	t := h.t
	r := rand.New(rand.NewPCG(h.cfg.seed, 1))
	remover := r.IntN(len(h.ds))
	h.removed = (remover + 1 + r.IntN(len(h.ds)-1)) % len(h.ds)
	for i := range h.ds {
		if i != h.removed {
			h.stay = append(h.stay, i)
		}
	}
	// Every member that stays can invite the removed member back.
	code := strings.TrimSpace(h.ds[h.removed].must("id", "--code"))
	for _, i := range h.stay {
		if i != 0 {
			h.ds[i].must("contact", "add", code)
		}
	}
	h.ds[remover].must("remove", group, h.ds[h.removed].name)
	if !waitUntil(90*time.Second, func() bool { return h.agreed() == "" }) {
		t.Fatalf("after %s removed %s, no agreement within 90s: %s", h.ds[remover].name, h.ds[h.removed].name, h.agreed())
	}
	h.removedAt = time.Now()
	if !waitUntil(30*time.Second, func() bool {
		g, err := h.ds[h.removed].group(group)
		return err == nil && g.Removed
	}) {
		h.troubles = append(h.troubles, fmt.Sprintf("%s was removed but does not show the group as removed after 30s", h.ds[h.removed].name))
	}
	h.step(fmt.Sprintf("%s removed %s; the %d others agree", h.ds[remover].name, h.ds[h.removed].name, len(h.stay)))
}

// agreed returns "" when every member that stays (and the churning
// member, if it is in) is on one epoch of the group with the right number
// of members, else what differs. After membership changes, whether the
// churning member ended in or out is read from the group, not from the
// order of the changes: changes made on both sides of a partition are
// concurrent, and the ordering layer may apply them in either order. It
// sets churnIn from the first member that stays.
func (h *harness) agreed() string {
	var views []string
	var epoch uint64
	ok := true
	if h.churned > 0 {
		g, err := h.ds[h.stay[0]].group(group)
		if err != nil {
			return err.Error()
		}
		h.churnIn = g.Members == len(h.stay)+1
	}
	members := slices.Clone(h.stay)
	if h.churnIn {
		members = append(members, h.removed)
	}
	for k, i := range members {
		g, err := h.ds[i].group(group)
		if err != nil {
			return err.Error()
		}
		views = append(views, fmt.Sprintf("%s: epoch %d, %d members, pending %v, removed %v, damaged %q", h.ds[i].name, g.Epoch, g.Members, g.Pending, g.Removed, g.Damaged))
		if k == 0 {
			epoch = g.Epoch
		}
		if g.Epoch != epoch || g.Members != len(members) || g.Pending || g.Removed || g.Damaged != "" {
			ok = false
		}
	}
	if ok {
		return ""
	}
	return strings.Join(views, "; ")
}

func (h *harness) sendText(from int, text string) {
	var res struct{ ID string }
	if err := h.ds[from].cliJSON(&res, "send", group, text); err != nil {
		h.troubles = append(h.troubles, fmt.Sprintf("send of a text failed: %v", err))
		return
	}
	h.sent = append(h.sent, sent{from: from, key: text, at: time.Now()})
}
