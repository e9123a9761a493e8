package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering/sim"
)

// tiny is a scenario small enough to run under the race detector in well
// under a second: three members, a few simulated seconds, no faults but
// a reordering network, and a quiet phase longer than the head keepalive.
var tiny = []string{"--members", "3", "--duration", "3s", "--quiet", "6s", "--drop", "0", "--dup", "0", "--op-rate", "0.5", "--msg-rate", "0.5"}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// svgSeriesNames checks that data is well-formed XML and returns the
// names of its series.
func svgSeriesNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "g" {
			var class, name string
			for _, a := range el.Attr {
				switch a.Name.Local {
				case "class":
					class = a.Value
				case "data-name":
					name = a.Value
				}
			}
			if class == "series" {
				names = append(names, name)
			}
		}
	}
}

func TestSimWritesTableCSVAndSVG(t *testing.T) {
	dir := t.TempDir()
	csvFile, svgFile := filepath.Join(dir, "runs.csv"), filepath.Join(dir, "runs.svg")
	code, stdout, stderr := runCLI(t, append([]string{"sim", "--seed", "4", "--seeds", "2", "--out", csvFile, "--plot", svgFile}, tiny...)...)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "fork_rate") || !strings.Contains(lines[0], "convergence_ms") {
		t.Errorf("table = %q, want a header and two runs", stdout)
	}
	f, err := os.Open(csvFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := sim.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Seed != 4 || rows[1].Seed != 5 || rows[0].Members != 3 {
		t.Errorf("CSV rows = %+v, want seeds 4 and 5 with 3 members", rows)
	}
	svg, err := os.ReadFile(svgFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := svgSeriesNames(t, svg), []string{"seed 4", "seed 5", "convergence"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SVG series = %q, want %q", got, want)
	}
}

func TestSimJSONMatchesTheOutFile(t *testing.T) {
	jsonFile := filepath.Join(t.TempDir(), "runs.json")
	code, stdout, stderr := runCLI(t, append([]string{"sim", "--seed", "4", "--json", "--out", jsonFile}, tiny...)...)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var rep sim.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if len(rep.Runs) != 1 || rep.Runs[0].Seed != 4 || len(rep.Summary) != 1 || !strings.HasPrefix(rep.Command, "parley sim --seed 4") {
		t.Errorf("report = %+v", rep)
	}
	file, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(file) != stdout {
		t.Errorf("--out file differs from stdout:\n%s\n%s", file, stdout)
	}
}

func TestSimSweepWritesRunsSummaryAndPlot(t *testing.T) {
	dir := t.TempDir()
	csvFile, svgFile := filepath.Join(dir, "sweep.csv"), filepath.Join(dir, "sweep.svg")
	args := []string{"sim", "sweep", "--sizes", "2,3", "--seeds", "1", "--duration", "3s", "--quiet", "6s",
		"--drop", "0", "--dup", "0", "--out", csvFile, "--plot", svgFile}
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "convergence_p99_ms") {
		t.Errorf("stdout lacks the summary table:\n%s", stdout)
	}
	runs, err := os.ReadFile(csvFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(runs), "\n"); n != 3 {
		t.Errorf("runs CSV has %d lines, want a header and 2 runs:\n%s", n, runs)
	}
	summary, err := os.ReadFile(filepath.Join(dir, "sweep-summary.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(summary)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "members,runs,not_converged,convergence_p50_ms") ||
		!strings.HasPrefix(lines[1], "2,1,") || !strings.HasPrefix(lines[2], "3,1,") {
		t.Errorf("summary CSV = %q, want sizes 2 and 3", lines)
	}
	svg, err := os.ReadFile(svgFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := svgSeriesNames(t, svg), []string{"convergence p50", "convergence p99", "mean fork rate"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SVG series = %q, want %q", got, want)
	}
}

func TestSimRejectsBadInputWithOneLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"sim", "--frobnicate"}, "flag provided but not defined: -frobnicate"},
		{"window without end", []string{"sim", "--partition", "5s"}, "want AT-UNTIL"},
		{"window backwards", []string{"sim", "--crash", "9s-4s"}, "AT < UNTIL"},
		{"window past the active phase", []string{"sim", "--duration", "10s", "--offline", "5s-20s"}, "ends after the active phase"},
		{"no members", []string{"sim", "--members", "0"}, "--members 0"},
		{"no seeds", []string{"sim", "--seeds", "0"}, "--seeds 0"},
		{"latency backwards", []string{"sim", "--latency", "80ms,5ms"}, "MIN <= MAX"},
		{"drop over one", []string{"sim", "--drop", "1.5"}, "--drop 1.5"},
		{"unknown output format", []string{"sim", "--out", "results.txt"}, ".csv or .json"},
		{"PNG plot", []string{"sim", "--plot", "results.png"}, "only SVG"},
		{"stray argument", []string{"sim", "7"}, `unexpected argument "7"`},
		{"members in a sweep", []string{"sim", "sweep", "--members", "5"}, "not defined: -members"},
		{"bad sizes", []string{"sim", "sweep", "--sizes", "10,x"}, "group sizes"},
		{"unknown scenario", []string{"sim", "sweep", "--scenario", "chaos"}, `--scenario "chaos"`},
		{"leave-out both kept and left out", []string{"sim", "--keep-gossiped", "--leave-out-gossiped"}, "contradict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "parley sim: ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr = %q, want one line containing %q", stderr, tc.want)
			}
		})
	}
}

func TestSimHelpPrintsUsage(t *testing.T) {
	for _, args := range [][]string{{"sim", "-h"}, {"sim", "sweep", "--help"}} {
		code, stdout, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(stdout, "Usage: parley sim") || !strings.Contains(stdout, "--partition AT-UNTIL") {
			t.Errorf("%q: exit %d, stdout %q", args, code, stdout)
		}
	}
}

func TestSimViolationsPrintTheReplayCommand(t *testing.T) {
	cfg := sim.DefaultConfig(9, 4)
	cfg.Partitions = []sim.Window{{At: 5 * time.Second, Until: 12 * time.Second}}
	runs := []simRun{
		{cfg: sim.DefaultConfig(8, 4)},
		{cfg: cfg, violations: []string{"convergence: m1 at epoch 3", "exactly once: m2 got a message\ntwice"}},
	}
	var stderr bytes.Buffer
	err := violations(&stderr, runs)
	if err == nil || err.Error() != "1 of 2 runs violated a property" {
		t.Errorf("err = %v", err)
	}
	want := "parley sim: seed 9, 4 members: convergence: m1 at epoch 3 (replay: parley sim --members 4 --seed 9 --partition 5s-12s)\n" +
		"parley sim: seed 9, 4 members: exactly once: m2 got a message twice (replay: parley sim --members 4 --seed 9 --partition 5s-12s)\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
	if err := violations(&stderr, runs[:1]); err != nil {
		t.Errorf("no violations: err = %v", err)
	}
}

func TestReplayCommandRebuildsTheScenario(t *testing.T) {
	for _, args := range [][]string{
		{"--members", "5", "--seed", "1"},
		{"--members", "12", "--seed", "77", "--duration", "20s", "--quiet", "45s", "--latency", "1ms,300ms", "--drop", "0.1", "--dup", "0",
			"--msg-rate", "2", "--op-rate", "0", "--partition", "1s-5s", "--partition", "6s-19s", "--crash", "2s-3s",
			"--offline", "500ms-1m0s", "--retention", "8", "--backoff", "150ms", "--duration", "1m"},
		{"--members", "4", "--seed", "3", "--keep-gossiped"},
	} {
		fs, f := newSimFlags("sim", 1)
		fs.IntVar(&f.members, "members", 5, "")
		if err := f.parse(fs, args, io.Discard); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		want := f.config(f.seed, f.members)
		replay := strings.Fields(replayCommand(want))
		fs2, f2 := newSimFlags("sim", 1)
		fs2.IntVar(&f2.members, "members", 5, "")
		if err := f2.parse(fs2, replay[2:], io.Discard); err != nil {
			t.Fatalf("replay %q: %v", replay, err)
		}
		if got := f2.config(f2.seed, f2.members); !reflect.DeepEqual(got, want) {
			t.Errorf("replay %q builds\n%+v\nwant\n%+v", replay, got, want)
		}
	}
}

func TestRunAllStopsWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := sim.DefaultConfig(1, 3)
	if _, err := runAll(ctx, []sim.Config{cfg, cfg}, 1, false, func(simRun) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestSweepScenarios(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		partitions []sim.Window
	}{
		{"online has no partition", []string{"--scenario", "online"}, nil},
		{"partition lasts from a third of the run until it heals", []string{"--scenario", "partition", "--duration", "30s"},
			[]sim.Window{{At: 10 * time.Second, Until: 30 * time.Second}}},
		{"partition keeps the given windows", []string{"--scenario", "partition", "--partition", "2s-4s"},
			[]sim.Window{{At: 2 * time.Second, Until: 4 * time.Second}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, f := newSimFlags("sim sweep", 2)
			f.sizes = sizesFlag{3, 7}
			fs.StringVar(&f.scenario, "scenario", "online", "")
			if err := f.parse(fs, tc.args, io.Discard); err != nil {
				t.Fatal(err)
			}
			cfgs, err := f.sweepConfigs()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cfgs {
				got = append(got, fmt.Sprintf("%d/%d", c.Members, c.Seed))
				if !reflect.DeepEqual(c.Partitions, tc.partitions) {
					t.Errorf("partitions = %v, want %v", c.Partitions, tc.partitions)
				}
			}
			if want := []string{"3/1", "3/2", "7/1", "7/2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("runs (members/seed) = %q, want %q", got, want)
			}
		})
	}
}
