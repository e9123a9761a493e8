package sim

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// TestTrace replays one seed of a scenario with a trace:
// PARLEY_TRACE=seed go test -run TestTrace -v ./ordering/sim/
// PARLEY_SCENARIO names the scenario (sweep: the large sweep's, at 100
// members); PARLEY_TRACE_GREP keeps only the lines that contain it.
func TestTrace(t *testing.T) {
	v := os.Getenv("PARLEY_TRACE")
	if v == "" {
		t.Skip("set PARLEY_TRACE=seed to trace a run")
	}
	seed, _ := strconv.ParseUint(v, 10, 64)
	var cfg Config
	switch os.Getenv("PARLEY_SCENARIO") {
	case "partition":
		cfg = partitionScenario(seed)
	case "concurrent":
		cfg = concurrentScenario(seed)
	case "long":
		cfg = longPartitionScenario(seed)
	case "large":
		cfg = largeMessageScenario(seed)
	case "sweep":
		// parley sim sweep --sizes 100 --scenario partition --duration 100s
		// --msg-rate 1 --crash 10s-40s --crash 60s-90s --offline 20s-80s
		cfg = DefaultConfig(seed, 100)
		cfg.Duration, cfg.MessageRate = 100*time.Second, 1
		cfg.Partitions = []Window{{At: cfg.Duration / 3, Until: cfg.Duration}}
		cfg.Crashes = []Window{{At: 10 * time.Second, Until: 40 * time.Second}, {At: 60 * time.Second, Until: 90 * time.Second}}
		cfg.Offline = []Window{{At: 20 * time.Second, Until: 80 * time.Second}}
	default:
		cfg = DefaultConfig(seed, 4)
		cfg.OpRate = 1
		cfg.Duration = 10 * time.Second
		cfg.Ordering.CommitBackoff = 50 * time.Millisecond
	}
	s := New(cfg)
	if grep := os.Getenv("PARLEY_TRACE_GREP"); grep != "" {
		s.SetLogger(func(format string, args ...any) {
			if line := fmt.Sprintf(format, args...); strings.Contains(line, grep) {
				t.Log(line)
			}
		})
	} else {
		s.SetLogger(t.Logf)
	}
	r := s.Run()
	for _, v := range r.Violations {
		t.Error(v)
	}
	t.Logf("metrics: %+v", r.Metrics)
	for _, n := range s.nodes {
		if n.loop == nil {
			continue
		}
		t.Logf("%s tip %d %v removed=%v members %v", n.name, n.loop.Tip().Number, n.loop.Tip().ID, n.loop.Removed(), n.loop.Tip().Members)
		g := n.loop.Graph()
		var walk func(x *ordering.Node, depth int)
		walk = func(x *ordering.Node, depth int) {
			t.Logf("   %*s%d %v %x", depth*2, "", x.Number, x.ID, x.CommitHash[:3])
			for _, c := range x.Children() {
				walk(c, depth+1)
			}
		}
		walk(g.Root(), 0)
		for m, v := range g.Votes() {
			t.Logf("   vote %s seq %d tip %v", m, v.Seq, v.Tip)
		}
	}
}
