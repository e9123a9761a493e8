package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parley-p2p/parley/ordering/sim"
)

// simDefaults are the scenario defaults the flags start from.
var simDefaults = sim.DefaultConfig(1, 5)

func simUsage() string {
	d := simDefaults
	return fmt.Sprintf(`Usage: parley sim [flags]
       parley sim sweep [flags]

Runs the ordering layer's deterministic network simulator: N members, each
running the real ordering loop over real MLS, on a simulated network with
latency, loss, duplicates, partitions, crashes and offline members. Time is
simulated, so a run is a pure function of its flags and seed and its figures
are exact. Prints one row per run (times in simulated milliseconds) and
exits 1 if a run violates a property (convergence, exactly-once delivery,
intents preserved), printing each violation with the command that replays it.

Scenario:
  --members N           initial group size (default 5)
  --seed S              first seed (default 1)
  --seeds K             run seeds S..S+K-1 (default 1; sweep: 3)
  --duration D          active phase: messages, membership changes, faults (default %v)
  --quiet D             quiet phase after the network heals (default %v)
  --latency MIN,MAX     one-way delay bounds (default %v,%v)
  --drop P              chance a message is lost and retransmitted %v later (default %v)
  --dup P               chance a message arrives twice (default %v)
  --msg-rate R          application messages per member per second (default %v)
  --op-rate R           adds, removes and updates per second in the group (default %v)
  --file-rate R         files sent per second in the group (default 0), each sent as
                        256 KiB application messages, four every 100 ms, among the texts
  --file-size N         largest file in bytes; sizes are drawn from 16 KiB to N (default 4 MiB)
  --partition AT-UNTIL  split the group in two during the window, e.g. 5s-12s (repeatable)
  --crash AT-UNTIL      crash a random member at AT and restart it at UNTIL (repeatable)
  --offline AT-UNTIL    cut a random member off during the window (repeatable)
  --retention H         epochs kept below the tip for rollback and catch-up (default %d)
  --backoff D           commit backoff per rank of the other members (default 2s)
  --keep-gossiped       catch-up answers carry what gossip brought moments ago too
                        (ordering.Config.KeepGossiped; by default they leave it out
                        and name it; --leave-out-gossiped, the default, is accepted)
  All faults end when the active phase does; convergence_ms counts from then.
  Give --quiet at least the head keepalive (5s) and the sync timeout (3s):
  members that have not yet heard of each other's branch count as apart.

Output:
  --out FILE            write the report to FILE.csv or FILE.json; '-' (the
                        default) prints a table on stdout
  --json                print the report as JSON on stdout instead of a table
  --plot FILE.svg       draw the figures as an SVG image
  --jobs N              runs at once (default: the number of CPUs)
  -v                    print each run on stderr as it ends, with its wall time

Sweep: 'parley sim sweep' runs every group size with K seeds and adds a
summary per size (convergence p50/p99 over the runs, mean fork rate, head
bytes per application message, deepest rollback). It takes the flags above
except --members, and:
  --sizes LIST          group sizes (default 10,50,100)
  --scenario NAME       online: no faults but the network's (the default);
                        partition: also a partition from a third of --duration
                        until the network heals, unless --partition is given
  --out FILE.csv writes the runs to FILE.csv and the summary to
  FILE-summary.csv; --plot draws convergence and fork rate against size.

Examples:
  parley sim --members 10 --seed 7 --partition 5s-12s --out results.csv
  parley sim --members 5 --seeds 20 --crash 8s-15s --json
  parley sim sweep --sizes 10,20,50 --seeds 5 --scenario partition --out sweep.csv --plot sweep.svg
`, d.Duration, d.Quiet, d.MinLatency, d.MaxLatency, d.RetransmitDelay, d.DropRate, d.DupRate,
		d.MessageRate, d.OpRate, d.Ordering.Retention)
}

// simFlags are the flags of 'sim' and 'sim sweep'.
type simFlags struct {
	members                      int
	seed                         uint64
	seeds                        int
	duration, quiet              time.Duration
	latency                      latencyFlag
	drop, dup, msgRate, opRate   float64
	fileRate                     float64
	fileSize                     int
	partitions, crashes, offline windowsFlag
	retention                    int
	backoff                      time.Duration
	keepGossiped, leaveOut       bool
	out, plot                    string
	json, verbose                bool
	jobs                         int
	// sweep only
	sizes    sizesFlag
	scenario string
}

func newSimFlags(name string, seeds int) (*flag.FlagSet, *simFlags) {
	d := simDefaults
	f := &simFlags{latency: latencyFlag{d.MinLatency, d.MaxLatency}}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Uint64Var(&f.seed, "seed", 1, "")
	fs.IntVar(&f.seeds, "seeds", seeds, "")
	fs.DurationVar(&f.duration, "duration", d.Duration, "")
	fs.DurationVar(&f.quiet, "quiet", d.Quiet, "")
	fs.Var(&f.latency, "latency", "")
	fs.Float64Var(&f.drop, "drop", d.DropRate, "")
	fs.Float64Var(&f.dup, "dup", d.DupRate, "")
	fs.Float64Var(&f.msgRate, "msg-rate", d.MessageRate, "")
	fs.Float64Var(&f.opRate, "op-rate", d.OpRate, "")
	fs.Float64Var(&f.fileRate, "file-rate", 0, "")
	fs.IntVar(&f.fileSize, "file-size", 4<<20, "")
	fs.Var(&f.partitions, "partition", "")
	fs.Var(&f.crashes, "crash", "")
	fs.Var(&f.offline, "offline", "")
	fs.IntVar(&f.retention, "retention", d.Ordering.Retention, "")
	fs.DurationVar(&f.backoff, "backoff", d.Ordering.CommitBackoff, "")
	fs.BoolVar(&f.keepGossiped, "keep-gossiped", false, "")
	fs.BoolVar(&f.leaveOut, "leave-out-gossiped", false, "") // the default now; kept for old commands
	fs.StringVar(&f.out, "out", "-", "")
	fs.StringVar(&f.plot, "plot", "", "")
	fs.BoolVar(&f.json, "json", false, "")
	fs.BoolVar(&f.verbose, "v", false, "")
	fs.IntVar(&f.jobs, "jobs", runtime.GOMAXPROCS(0), "")
	return fs, f
}

// parse parses args and checks the values that do not depend on the
// command; -h prints the usage on stdout.
func (f *simFlags) parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, simUsage())
			return err
		}
		return fmt.Errorf("%w (run 'parley sim -h')", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (run 'parley sim -h')", fs.Arg(0))
	}
	switch {
	case f.seeds < 1:
		return fmt.Errorf("--seeds %d: want at least 1", f.seeds)
	case f.duration <= 0:
		return fmt.Errorf("--duration %v: want a positive duration", f.duration)
	case f.quiet < 0:
		return fmt.Errorf("--quiet %v: want a duration of 0 or more", f.quiet)
	case f.drop < 0 || f.drop > 1:
		return fmt.Errorf("--drop %v: want a chance from 0 to 1", f.drop)
	case f.dup < 0 || f.dup > 1:
		return fmt.Errorf("--dup %v: want a chance from 0 to 1", f.dup)
	case f.msgRate < 0 || math.IsInf(f.msgRate, 0) || math.IsNaN(f.msgRate):
		return fmt.Errorf("--msg-rate %v: want a rate of 0 or more", f.msgRate)
	case f.opRate < 0 || math.IsInf(f.opRate, 0) || math.IsNaN(f.opRate):
		return fmt.Errorf("--op-rate %v: want a rate of 0 or more", f.opRate)
	case f.fileRate < 0 || math.IsInf(f.fileRate, 0) || math.IsNaN(f.fileRate):
		return fmt.Errorf("--file-rate %v: want a rate of 0 or more", f.fileRate)
	case f.fileSize < 16<<10 || f.fileSize > 1<<30:
		return fmt.Errorf("--file-size %d: want 16 KiB (16384) to 1 GiB", f.fileSize)
	case f.retention < 1:
		return fmt.Errorf("--retention %d: want at least 1 epoch", f.retention)
	case f.backoff < 0:
		return fmt.Errorf("--backoff %v: want a duration of 0 or more", f.backoff)
	case f.jobs < 1:
		return fmt.Errorf("--jobs %d: want at least 1", f.jobs)
	}
	for _, ws := range []struct {
		name string
		ws   windowsFlag
	}{{"partition", f.partitions}, {"crash", f.crashes}, {"offline", f.offline}} {
		for _, w := range ws.ws {
			if w.Until > f.duration {
				return fmt.Errorf("--%s %v-%v: ends after the active phase (--duration %v); faults end when it does", ws.name, w.At, w.Until, f.duration)
			}
		}
	}
	if f.out != "-" && f.out != "" {
		if ext := filepath.Ext(f.out); ext != ".csv" && ext != ".json" {
			return fmt.Errorf("--out %s: want a .csv or .json file, or '-' for a table", f.out)
		}
	}
	if f.plot != "" && filepath.Ext(f.plot) != ".svg" {
		return fmt.Errorf("--plot %s: only SVG is drawn; name a .svg file (convert it with rsvg-convert or inkscape)", f.plot)
	}
	if f.keepGossiped && f.leaveOut {
		return errors.New("--keep-gossiped and --leave-out-gossiped contradict each other (leaving out is the default)")
	}
	return nil
}

// config is the scenario of one run.
func (f *simFlags) config(seed uint64, members int) sim.Config {
	cfg := sim.DefaultConfig(seed, members)
	cfg.Duration, cfg.Quiet = f.duration, f.quiet
	cfg.MinLatency, cfg.MaxLatency = f.latency.min, f.latency.max
	cfg.DropRate, cfg.DupRate = f.drop, f.dup
	cfg.MessageRate, cfg.OpRate = f.msgRate, f.opRate
	cfg.FileRate, cfg.FileSize = f.fileRate, f.fileSize
	cfg.Partitions = append([]sim.Window(nil), f.partitions...)
	cfg.Crashes = append([]sim.Window(nil), f.crashes...)
	cfg.Offline = append([]sim.Window(nil), f.offline...)
	cfg.Ordering.Retention = f.retention
	cfg.Ordering.CommitBackoff = f.backoff
	cfg.Ordering.KeepGossiped = f.keepGossiped
	// With no crash nothing is restored: the snapshots, most of a large
	// run's memory, need not be kept.
	cfg.DiscardSnapshots = len(cfg.Crashes) == 0
	return cfg
}

// runSim runs 'parley sim' and 'parley sim sweep'.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "sweep" {
		return runSweep(ctx, args[1:], stdout, stderr)
	}
	fs, f := newSimFlags("sim", 1)
	fs.IntVar(&f.members, "members", simDefaults.Members, "")
	if err := f.parse(fs, args, stdout); err != nil {
		return err
	}
	if f.members < 1 {
		return fmt.Errorf("--members %d: want at least 1", f.members)
	}
	var cfgs []sim.Config
	for i := range f.seeds {
		cfgs = append(cfgs, f.config(f.seed+uint64(i), f.members))
	}
	runs, err := runAll(ctx, cfgs, f.jobs, f.plot != "", f.progress(stderr))
	if err != nil {
		return err
	}
	rep := f.report("sim", args, runs)
	if err := f.write(stdout, rep, false); err != nil {
		return err
	}
	if f.plot != "" {
		if err := writeFile(f.plot, func(w io.Writer) error { return sim.WriteSVG(w, runCharts(runs)...) }); err != nil {
			return err
		}
	}
	return violations(stderr, runs)
}

// runSweep runs every group size with K seeds.
func runSweep(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, f := newSimFlags("sim sweep", 3)
	f.sizes = sizesFlag{10, 50, 100}
	fs.Var(&f.sizes, "sizes", "")
	fs.StringVar(&f.scenario, "scenario", "online", "")
	if err := f.parse(fs, args, stdout); err != nil {
		return err
	}
	cfgs, err := f.sweepConfigs()
	if err != nil {
		return err
	}
	runs, err := runAll(ctx, cfgs, f.jobs, false, f.progress(stderr))
	if err != nil {
		return err
	}
	rep := f.report("sim sweep", args, runs)
	if err := f.write(stdout, rep, true); err != nil {
		return err
	}
	if f.plot != "" {
		if err := writeFile(f.plot, func(w io.Writer) error { return sim.WriteSVG(w, sweepCharts(rep.Summary)...) }); err != nil {
			return err
		}
	}
	return violations(stderr, runs)
}

// sweepConfigs are the runs of a sweep, size by size.
func (f *simFlags) sweepConfigs() ([]sim.Config, error) {
	switch f.scenario {
	case "online":
	case "partition":
		if len(f.partitions) == 0 {
			f.partitions = windowsFlag{{At: f.duration / 3, Until: f.duration}}
		}
	default:
		return nil, fmt.Errorf("--scenario %q: want online or partition", f.scenario)
	}
	var cfgs []sim.Config
	for _, size := range f.sizes {
		for i := range f.seeds {
			cfgs = append(cfgs, f.config(f.seed+uint64(i), size))
		}
	}
	return cfgs, nil
}

// simRun is one finished run.
type simRun struct {
	cfg        sim.Config
	row        sim.Row
	violations []string
	latencies  []float64 // at latencyPercentiles, in ms, when plotting
	wall       time.Duration
}

var latencyPercentiles = []float64{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100}

// runAll runs the scenarios, jobs at a time, and returns them in order.
// A simulator panic is reported as a violation of that run. Canceling ctx
// returns at once, leaving the runs in progress to end with the process.
func runAll(ctx context.Context, cfgs []sim.Config, jobs int, quantiles bool, progress func(simRun)) ([]simRun, error) {
	runs := make([]simRun, len(cfgs))
	next := make(chan int)
	done := make(chan int, len(cfgs)) // buffered: a canceled run never blocks
	for range min(jobs, len(cfgs)) {
		go func() {
			for i := range next {
				runs[i] = runOne(cfgs[i], quantiles)
				done <- i
			}
		}()
	}
	sent, finished := 0, 0
	for finished < len(cfgs) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		feed := next
		if sent == len(cfgs) {
			feed = nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case feed <- sent:
			sent++
		case i := <-done:
			finished++
			progress(runs[i])
		}
	}
	close(next)
	return runs, nil
}

func runOne(cfg sim.Config, quantiles bool) (run simRun) {
	start := time.Now()
	run.cfg = cfg
	defer func() {
		if p := recover(); p != nil {
			res := &sim.Result{Violations: []string{fmt.Sprintf("simulator panicked: %v", p)}}
			res.Metrics.ConvergenceTime = -1
			run.row, run.violations, run.latencies = sim.NewRow(cfg, res), res.Violations, nil
		}
		run.wall = time.Since(start)
	}()
	res := sim.New(cfg).Run()
	run.row, run.violations = sim.NewRow(cfg, res), res.Violations
	if quantiles {
		for _, p := range latencyPercentiles {
			run.latencies = append(run.latencies, float64(res.Metrics.Latency(p))/float64(time.Millisecond))
		}
	}
	return run
}

func (f *simFlags) progress(stderr io.Writer) func(simRun) {
	return func(r simRun) {
		if f.verbose {
			conv := "never"
			if r.row.ConvergenceMS >= 0 {
				conv = formatMS(r.row.ConvergenceMS) + " ms"
			}
			fmt.Fprintf(stderr, "parley sim: seed %d, %d members: %d commits, %d forks, convergence %s, %d violations (%v wall)\n",
				r.row.Seed, r.row.Members, r.row.Commits, r.row.Forks, conv, r.row.Violations, r.wall.Round(time.Millisecond))
		}
	}
}

func (f *simFlags) report(cmd string, args []string, runs []simRun) *sim.Report {
	rows := make([]sim.Row, len(runs))
	for i, r := range runs {
		rows[i] = r.row
	}
	quoted := []string{"parley", cmd}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	return &sim.Report{Command: strings.Join(quoted, " "), Runs: rows, Summary: sim.Summarize(rows)}
}

// write prints the report on stdout (a table, or JSON with --json) and
// writes --out.
func (f *simFlags) write(stdout io.Writer, rep *sim.Report, summary bool) error {
	if f.json {
		if err := rep.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		if err := writeTable(stdout, rep.Runs); err != nil {
			return err
		}
		if summary {
			fmt.Fprintln(stdout)
			if err := writeSummaryTable(stdout, rep.Summary); err != nil {
				return err
			}
		}
	}
	switch filepath.Ext(f.out) {
	case ".json":
		return writeFile(f.out, rep.WriteJSON)
	case ".csv":
		if err := writeFile(f.out, func(w io.Writer) error { return sim.WriteCSV(w, rep.Runs) }); err != nil {
			return err
		}
		if summary {
			name := strings.TrimSuffix(f.out, ".csv") + "-summary.csv"
			return writeFile(name, func(w io.Writer) error { return sim.WriteSummaryCSV(w, rep.Summary) })
		}
	}
	return nil
}

func writeFile(name string, write func(io.Writer) error) error {
	file, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(file); err != nil {
		file.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return file.Close()
}

func writeTable(w io.Writer, rows []sim.Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "seed\tmembers\tcommits\tforks\tfork_rate\trollbacks\tmax_rollback\trejoins\tapp_msgs\tbytes/member\thead_bytes/app_msg\tsync_bytes\tsync_missed\tsync_overhead\tconvergence_ms\tlatency_p50_ms\tlatency_p99_ms\tfinal_epoch\tfinal_members\tviolations\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.3f\t%d\t%d\t%d\t%d\t%.0f\t%.1f\t%d\t%d\t%.2f\t%s\t%.1f\t%.1f\t%d\t%d\t%d\t\n",
			r.Seed, r.Members, r.Commits, r.Forks, r.ForkRate, r.Rollbacks, r.MaxRollback, r.Rejoins, r.AppMessages,
			r.BytesPerMember, r.HeadBytesPerAppMessage, r.SyncBytes, r.SyncMissed, r.SyncOverhead, formatMS(r.ConvergenceMS), r.LatencyP50MS, r.LatencyP99MS,
			r.FinalEpoch, r.FinalMembers, r.Violations)
	}
	return tw.Flush()
}

func writeSummaryTable(w io.Writer, sums []sim.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "members\truns\tconvergence_p50_ms\tconvergence_p99_ms\tnot_converged\tfork_rate_mean\thead_bytes/app_msg\tmax_rollback\tviolating\t")
	for _, s := range sums {
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.1f\t%d\t%.4f\t%.1f\t%d\t%d\t\n",
			s.Members, s.Runs, s.ConvergenceP50MS, s.ConvergenceP99MS, s.NotConverged, s.ForkRateMean,
			s.HeadBytesPerAppMessage, s.MaxRollback, s.Violating)
	}
	return tw.Flush()
}

// formatMS prints a convergence time; -1 is "never".
func formatMS(v float64) string {
	if v < 0 {
		return "never"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// violations prints each violation on its own line with the command that
// replays the run, and fails if there was any.
func violations(stderr io.Writer, runs []simRun) error {
	bad := 0
	for _, r := range runs {
		if len(r.violations) > 0 {
			bad++
		}
		for _, v := range r.violations {
			fmt.Fprintf(stderr, "parley sim: seed %d, %d members: %s (replay: %s)\n",
				r.cfg.Seed, r.cfg.Members, strings.ReplaceAll(v, "\n", " "), replayCommand(r.cfg))
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d runs violated a property", bad, len(runs))
	}
	return nil
}

// replayCommand is the 'parley sim' command line that runs cfg: the
// members, the seed and every setting that differs from the defaults.
func replayCommand(cfg sim.Config) string {
	d := sim.DefaultConfig(cfg.Seed, cfg.Members)
	args := []string{"parley", "sim", "--members", strconv.Itoa(cfg.Members), "--seed", strconv.FormatUint(cfg.Seed, 10)}
	add := func(differs bool, name, value string) {
		if differs {
			args = append(args, "--"+name, value)
		}
	}
	float := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	add(cfg.Duration != d.Duration, "duration", cfg.Duration.String())
	add(cfg.Quiet != d.Quiet, "quiet", cfg.Quiet.String())
	add(cfg.MinLatency != d.MinLatency || cfg.MaxLatency != d.MaxLatency, "latency", latencyFlag{cfg.MinLatency, cfg.MaxLatency}.String())
	add(cfg.DropRate != d.DropRate, "drop", float(cfg.DropRate))
	add(cfg.DupRate != d.DupRate, "dup", float(cfg.DupRate))
	add(cfg.MessageRate != d.MessageRate, "msg-rate", float(cfg.MessageRate))
	add(cfg.OpRate != d.OpRate, "op-rate", float(cfg.OpRate))
	add(cfg.FileRate != 0, "file-rate", float(cfg.FileRate))
	add(cfg.FileRate != 0 && cfg.FileSize != 4<<20, "file-size", strconv.Itoa(cfg.FileSize))
	for _, w := range cfg.Partitions {
		add(true, "partition", formatWindow(w))
	}
	for _, w := range cfg.Crashes {
		add(true, "crash", formatWindow(w))
	}
	for _, w := range cfg.Offline {
		add(true, "offline", formatWindow(w))
	}
	add(cfg.Ordering.Retention != d.Ordering.Retention, "retention", strconv.Itoa(cfg.Ordering.Retention))
	add(cfg.Ordering.CommitBackoff != d.Ordering.CommitBackoff, "backoff", cfg.Ordering.CommitBackoff.String())
	if cfg.Ordering.KeepGossiped {
		args = append(args, "--keep-gossiped")
	}
	return strings.Join(args, " ")
}

// shellQuote quotes an argument for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:=/+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runCharts are the figures of 'parley sim': delivery latency
// percentiles per seed, and convergence time per seed.
func runCharts(runs []simRun) []sim.Chart {
	const maxLines = 8
	lat := sim.Chart{Title: "Delivery latency", XLabel: "percentile", YLabel: "latency (simulated ms)"}
	if len(runs) > maxLines {
		lat.Title = fmt.Sprintf("Delivery latency (first %d of %d seeds)", maxLines, len(runs))
	}
	conv := sim.Chart{Title: "Convergence after the network heals", XLabel: "seed", YLabel: "convergence (simulated ms)", DataTicks: true}
	bars := sim.Series{Name: "convergence", Bars: true}
	for i, r := range runs {
		if i < maxLines {
			lat.Series = append(lat.Series, sim.Series{Name: fmt.Sprintf("seed %d", r.row.Seed), X: latencyPercentiles, Y: r.latencies})
		}
		y := r.row.ConvergenceMS
		if y < 0 {
			y = math.NaN() // never converged: no bar
		}
		bars.X = append(bars.X, float64(r.row.Seed))
		bars.Y = append(bars.Y, y)
	}
	conv.Series = []sim.Series{bars}
	return []sim.Chart{lat, conv}
}

// sweepCharts are the figures of a sweep: convergence p50/p99 and mean
// fork rate against group size.
func sweepCharts(sums []sim.Summary) []sim.Chart {
	p50 := sim.Series{Name: "convergence p50"}
	p99 := sim.Series{Name: "convergence p99"}
	forks := sim.Series{Name: "mean fork rate"}
	for _, s := range sums {
		x := float64(s.Members)
		c50, c99 := s.ConvergenceP50MS, s.ConvergenceP99MS
		if s.NotConverged == s.Runs {
			c50, c99 = math.NaN(), math.NaN()
		}
		p50.X, p50.Y = append(p50.X, x), append(p50.Y, c50)
		p99.X, p99.Y = append(p99.X, x), append(p99.Y, c99)
		forks.X, forks.Y = append(forks.X, x), append(forks.Y, s.ForkRateMean)
	}
	return []sim.Chart{
		{Title: "Convergence after the network heals", XLabel: "group size (members)", YLabel: "convergence (simulated ms)",
			LogX: true, DataTicks: true, Series: []sim.Series{p50, p99}},
		{Title: "Fork rate", XLabel: "group size (members)", YLabel: "forks per commit",
			LogX: true, DataTicks: true, Series: []sim.Series{forks}},
	}
}

// latencyFlag is --latency MIN,MAX.
type latencyFlag struct{ min, max time.Duration }

func (l latencyFlag) String() string { return l.min.String() + "," + l.max.String() }

func (l *latencyFlag) Set(s string) error {
	lo, hi, ok := strings.Cut(s, ",")
	if !ok {
		return errors.New("want MIN,MAX, e.g. 5ms,80ms")
	}
	min, err1 := time.ParseDuration(strings.TrimSpace(lo))
	max, err2 := time.ParseDuration(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || min < 0 || max < min {
		return errors.New("want MIN,MAX with 0 <= MIN <= MAX, e.g. 5ms,80ms")
	}
	l.min, l.max = min, max
	return nil
}

// windowsFlag is a repeatable AT-UNTIL flag.
type windowsFlag []sim.Window

func formatWindow(w sim.Window) string { return w.At.String() + "-" + w.Until.String() }

func (ws windowsFlag) String() string {
	var s []string
	for _, w := range ws {
		s = append(s, formatWindow(w))
	}
	return strings.Join(s, " ")
}

func (ws *windowsFlag) Set(s string) error {
	at, until, ok := strings.Cut(s, "-")
	if !ok {
		return errors.New("want AT-UNTIL, e.g. 5s-12s")
	}
	a, err1 := time.ParseDuration(at)
	u, err2 := time.ParseDuration(until)
	if err1 != nil || err2 != nil {
		return errors.New("want AT-UNTIL with two durations, e.g. 5s-12s")
	}
	if a < 0 || u <= a {
		return errors.New("want AT-UNTIL with 0 <= AT < UNTIL, e.g. 5s-12s")
	}
	*ws = append(*ws, sim.Window{At: a, Until: u})
	return nil
}

// sizesFlag is --sizes N,N,...; setting it replaces the default.
type sizesFlag []int

func (z sizesFlag) String() string {
	var s []string
	for _, n := range z {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, ",")
}

func (z *sizesFlag) Set(s string) error {
	var sizes sizesFlag
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return errors.New("want group sizes of 1 or more separated by commas, e.g. 10,50,100")
		}
		sizes = append(sizes, n)
	}
	*z = sizes
	return nil
}
