package driver_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parley-p2p/parley/cmd/interop/driver"
	"github.com/parley-p2p/parley/cmd/interop/server"
	"github.com/parley-p2p/parley/mls/framing"
)

// Environment variables of the interop tests.
const (
	// envConfigs names a directory of configuration files to run instead
	// of testdata/configs.
	envConfigs = "PARLEY_INTEROP_CONFIGS"
	// envDeep, set to 1, runs deep_random (skipped otherwise: it takes
	// minutes).
	envDeep = "PARLEY_INTEROP_DEEP"
	// envSeed fixes deep_random's random assignments.
	envSeed = "PARLEY_INTEROP_SEED"
	// envInstances sets how many server instances play the actors
	// (default 2).
	envInstances = "PARLEY_INTEROP_INSTANCES"
	// envSuites restricts the cipher suites, as a comma-separated list.
	envSuites = "PARLEY_INTEROP_SUITES"
	// envAssignments chooses the assignments of instances to actors in
	// every suite: "all" (the whole matrix), "pairwise" (every pair of
	// actors on every pair of instances) or "one" (actor i on instance
	// i mod n). Unset, see defaultAssignments.
	envAssignments = "PARLEY_INTEROP_ASSIGNMENTS"
)

const deepRandom = "deep_random"

// paddings gives each instance its own PrivateMessage padding, so that
// every script also checks that padded content from a peer is read.
var paddings = []framing.PaddingFunc{
	nil, // the default: to a multiple of 32 bytes
	func(int) int { return 17 },
	framing.PadTo(100),
}

// startInstances runs n servers on loopback ports and connects to them.
func startInstances(t *testing.T, n int) []*driver.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	var clients []*driver.Client
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := server.Serve(ctx, ln, nil, server.WithPadding(paddings[i%len(paddings)])); err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
		}()
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c, err := driver.NewClient(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	return clients
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// suites lists the suites every instance supports, less those envSuites
// leaves out.
func suites(t *testing.T, clients []*driver.Client) []uint32 {
	var out []uint32
	for _, cs := range clients[0].Suites {
		all := true
		for _, c := range clients {
			all = all && slices.Contains(c.Suites, cs)
		}
		if all {
			out = append(out, cs)
		}
	}
	if only := os.Getenv(envSuites); only != "" {
		var keep []uint32
		for _, f := range strings.Split(only, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
			if err != nil {
				t.Fatalf("%s=%q: %v", envSuites, only, err)
			}
			if slices.Contains(out, uint32(n)) {
				keep = append(keep, uint32(n))
			}
		}
		out = keep
	}
	return out
}

// configFiles lists the configuration files to run, by name.
func configFiles(t *testing.T) map[string]string {
	dir := os.Getenv(envConfigs)
	if dir == "" {
		dir = filepath.Join("testdata", "configs")
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.json*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no configuration files in %s (%v)", dir, err)
	}
	out := map[string]string{}
	for _, p := range paths {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".gz"), ".json")
		out[name] = p
	}
	return out
}

// job is one run of one script.
type job struct {
	script string
	run    driver.Run
	assign []int
}

type cell struct {
	suite   uint32
	encrypt bool
}

type failure struct {
	job
	err error
}

// results counts the runs of one configuration file.
type results struct {
	mu       sync.Mutex
	passed   map[cell]int
	failed   map[cell]int
	failures []failure
}

// runJobs runs the jobs of one configuration on a few workers.
func runJobs(t *testing.T, cfg *driver.Config, jobs []job) *results {
	t.Helper()
	res := &results{passed: map[cell]int{}, failed: map[cell]int{}}
	// A run may take as long as the test may (deep_random in suite 5 takes
	// many minutes); stop a little before, to report.
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(24 * time.Hour)
	}
	deadline = deadline.Add(-time.Until(deadline) / 20)
	ch := make(chan job)
	var wg sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				ctx, cancel := context.WithDeadline(context.Background(), deadline)
				err := j.run.Execute(ctx, cfg.Scripts[j.script])
				cancel()
				k := cell{j.run.Suite, j.run.Encrypt}
				res.mu.Lock()
				if err != nil {
					res.failed[k]++
					res.failures = append(res.failures, failure{j, err})
				} else {
					res.passed[k]++
				}
				res.mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return res
}

// report logs the pass matrix of a configuration (suite by handshake
// mode) and fails the test for each failed run, showing a few.
func (r *results) report(t *testing.T, name string, suites []uint32) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-16s %-16s\n", "suite", "private hs", "public hs")
	total := [2]int{}
	for _, cs := range suites {
		fmt.Fprintf(&b, "%-12d", cs)
		for _, enc := range []bool{true, false} {
			k := cell{cs, enc}
			fmt.Fprintf(&b, " %-16s", fmt.Sprintf("%d/%d passed", r.passed[k], r.passed[k]+r.failed[k]))
			total[0] += r.passed[k]
			total[1] += r.failed[k]
		}
		b.WriteByte('\n')
	}
	t.Logf("pass matrix of %s:\n%s", name, b.String())
	t.Logf("interop %s: %d passed, %d failed", name, total[0], total[1])
	slices.SortFunc(r.failures, func(a, b failure) int { return strings.Compare(a.script, b.script) })
	for i, f := range r.failures {
		if i == 10 {
			t.Errorf("... and %d more failed runs", len(r.failures)-i)
			break
		}
		t.Errorf("%s/%s suite %d encrypt %v instances %v: %v", name, f.script, f.run.Suite, f.run.Encrypt, f.assign, f.err)
	}
}

// defaultAssignments is what runs when envAssignments is unset: pairwise
// assignments, and a single assignment per script with -short or under
// the race detector. The detector slows the X448 and P-521/P-384
// arithmetic of suites 4 to 7 by an order of magnitude (suite 5 alone
// would take a quarter of an hour pairwise), and in suites 1 to 3 the
// pairwise matrix took 150 of CI's 275 s of race-detector interop runs
// while checking, between instances of one implementation, the same code
// paths as one assignment; the race detector needs those paths once.
// Without the detector the pairwise matrix takes about 2 minutes. The
// whole matrix is PARLEY_INTEROP_ASSIGNMENTS=all.
func defaultAssignments() string {
	if testing.Short() || raceEnabled {
		return "one"
	}
	return "pairwise"
}

func assignments(t *testing.T, cs uint32, n, k int) [][]int {
	mode := os.Getenv(envAssignments)
	if mode == "" {
		mode = defaultAssignments()
	}
	switch mode {
	case "all":
		return driver.Assignments(n, k)
	case "pairwise":
		return driver.PairwiseAssignments(n, k)
	case "one":
		a := make([]int, k)
		for i := range a {
			a[i] = i % n
		}
		return [][]int{a}
	default:
		t.Fatalf("%s=%q: want all, pairwise or one", envAssignments, mode)
		return nil
	}
}

func newRun(clients []*driver.Client, actors []string, assign []int, cs uint32, encrypt bool) driver.Run {
	r := driver.Run{Suite: cs, Encrypt: encrypt, Actors: map[string]*driver.Client{}}
	for i, a := range actors {
		r.Actors[a] = clients[assign[i]]
	}
	return r
}

// Every script of every configuration (but deep_random) passes between
// Parley instances in every cipher suite, with handshakes encrypted and
// not, under the assignments of instances to actors that envAssignments
// or defaultAssignments choose.
func TestScriptsPassBetweenParleyInstances(t *testing.T) {
	clients := startInstances(t, envInt(t, envInstances, 2))
	css := suites(t, clients)
	files := configFiles(t)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if n != deepRandom && !yield(n) {
				return
			}
		}
	}) {
		t.Run(name, func(t *testing.T) {
			cfg, err := driver.LoadConfig(files[name])
			if err != nil {
				t.Fatal(err)
			}
			var jobs []job
			for _, script := range cfg.Names() {
				actors := cfg.Scripts[script].Actors()
				for _, cs := range css {
					for _, enc := range []bool{true, false} {
						for _, a := range assignments(t, cs, len(clients), len(actors)) {
							jobs = append(jobs, job{script, newRun(clients, actors, a, cs, enc), a})
						}
					}
				}
			}
			runJobs(t, cfg, jobs).report(t, name, css)
		})
	}
}

// deep_random (a long random history of a large group) passes in every
// suite and handshake mode under a random assignment of instances to its
// actors. It takes minutes; set PARLEY_INTEROP_DEEP=1 to run it.
func TestDeepRandomScriptPasses(t *testing.T) {
	if os.Getenv(envDeep) != "1" {
		t.Skipf("set %s=1 to run deep_random", envDeep)
	}
	path, ok := configFiles(t)[deepRandom]
	if !ok {
		t.Skip("no deep_random configuration")
	}
	cfg, err := driver.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(envSeed); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", envSeed, v, err)
		}
	}
	t.Logf("random assignments from seed %d (rerun with %s=%d)", seed, envSeed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	clients := startInstances(t, envInt(t, envInstances, 2))
	css := suites(t, clients)
	var jobs []job
	for _, script := range cfg.Names() {
		actors := cfg.Scripts[script].Actors()
		for _, cs := range css {
			for _, enc := range []bool{true, false} {
				a := make([]int, len(actors))
				for i := range a {
					a[i] = rng.IntN(len(clients))
				}
				jobs = append(jobs, job{script, newRun(clients, actors, a, cs, enc), a})
			}
		}
	}
	runJobs(t, cfg, jobs).report(t, deepRandom, css)
}
