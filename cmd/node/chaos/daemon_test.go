package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is one member: a data directory, a namespace, and while it runs
// a `parley run` process inside that namespace. The CLI runs in the root
// namespace and reaches the daemon through the unix socket in its data
// directory.
type daemon struct {
	t       *testing.T
	bin     string
	name    string
	dir     string // data directory
	logPath string // the daemon's stdout and stderr, across restarts
	ns      string
	listen  string        // --listen, unless empty (the default: every interface)
	mdns    bool          // mDNS on (the default), else --no-mdns
	update  time.Duration // --update-interval, if not zero
	flags   []string      // further flags of parley run

	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	starts int
	peak   int64 // the highest VmHWM of the processes stopped so far
}

func newDaemon(t *testing.T, bin, work, name, ns, addr string) *daemon {
	t.Helper()
	d := &daemon{
		t: t, bin: bin, name: name, ns: ns,
		dir:     filepath.Join(work, name),
		logPath: filepath.Join(work, name+".log"),
		listen:  "/ip4/" + addr + "/tcp/4001",
	}
	if _, err := d.cli("init", "--name", name, "--key-file"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop(syscall.SIGKILL) })
	return d
}

// parleyBinary is the parley binary the daemons run: PARLEY_CHAOS_BINARY,
// else one built into work from this tree.
func parleyBinary(t *testing.T, work string) string {
	t.Helper()
	if bin := os.Getenv("PARLEY_CHAOS_BINARY"); bin != "" {
		return bin
	}
	bin := filepath.Join(work, "parley")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/parley-p2p/parley/cmd/node").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// skipUnlessChaos skips a test of real daemons in network namespaces
// unless PARLEY_CHAOS=1, as root, without -race and -short.
func skipUnlessChaos(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("PARLEY_CHAOS") != "1" {
		t.Skipf("%s: set PARLEY_CHAOS=1 and run as root (see the package comment)", what)
	}
	if raceEnabled || testing.Short() || os.Geteuid() != 0 {
		t.Skipf("%s: needs root, and runs without -race and -short", what)
	}
}

// invite has founder add the others' contact codes, create the group and
// invite them all; the caller waits for them to join.
func invite(founder *daemon, others []*daemon) {
	for _, d := range others {
		founder.must("contact", "add", strings.TrimSpace(d.must("id", "--code")))
	}
	founder.must("group", "create", group)
	for _, d := range others {
		founder.must("invite", group, d.name)
	}
}

// cli runs a parley command against the daemon's data directory.
func (d *daemon) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, append(args, "--data", d.dir)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("parley %s (%s): %w: %s", strings.Join(args, " "), d.name, err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// cliJSON runs a command with --json and decodes its output into v.
func (d *daemon) cliJSON(v any, args ...string) error {
	out, err := d.cli(append(args, "--json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("parley %s (%s): decoding %q: %w", strings.Join(args, " "), d.name, out, err)
	}
	return nil
}

func (d *daemon) must(args ...string) string {
	d.t.Helper()
	out, err := d.cli(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// running reports whether the daemon's process is up.
func (d *daemon) running() bool {
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// start runs the daemon in its namespace and waits until its API answers.
func (d *daemon) start() error {
	log, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	d.starts++
	fmt.Fprintf(log, "=== chaos: start %d of %s at %s\n", d.starts, d.name, time.Now().Format(time.RFC3339Nano))
	// ip netns exec execs the command: the process is parley itself, so
	// signals reach it directly.
	args := []string{"netns", "exec", d.ns, d.bin, "run", "--data", d.dir, "--log-level", "debug"}
	if !d.mdns {
		args = append(args, "--no-mdns")
	}
	if d.listen != "" {
		args = append(args, "--listen", d.listen)
	}
	if d.update > 0 {
		args = append(args, "--update-interval", d.update.String())
	}
	args = append(args, d.flags...)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	d.cmd, d.log, d.exited = cmd, log, make(chan struct{})
	exited := d.exited
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := d.cli("status"); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s's daemon exited at start (%v); log %s", d.name, cmd.ProcessState, d.logPath)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s's daemon did not answer within 30s; log %s", d.name, d.logPath)
		}
	}
}

// stop signals the daemon and waits for it to exit (SIGKILL after 30s).
func (d *daemon) stop(sig syscall.Signal) error {
	if d.cmd == nil {
		return nil
	}
	var err error
	d.peak = d.peakRSS()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("%s's daemon still ran 30s after %v; killed", d.name, sig)
		d.cmd.Process.Kill()
		<-d.exited
	}
	fmt.Fprintf(d.log, "=== chaos: %s stopped by %v at %s (%v)\n", d.name, sig, time.Now().Format(time.RFC3339Nano), d.cmd.ProcessState)
	d.cmd = nil
	d.log.Close()
	return err
}

// rss is the daemon process's resident memory in bytes (VmRSS), or 0 if
// it is not running or cannot be read.
func (d *daemon) rss() int64 { return d.procStatus("VmRSS:") }

// peakRSS is the most resident memory any of the daemon's processes had
// (VmHWM), over all its starts so far.
func (d *daemon) peakRSS() int64 { return max(d.peak, d.procStatus("VmHWM:")) }

// procStatus reads a figure in kB from the running process's
// /proc/PID/status, in bytes (0 if it cannot).
func (d *daemon) procStatus(field string) int64 {
	if !d.running() {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// groups returns the daemon's list of groups.
func (d *daemon) groups() ([]groupInfo, error) {
	var gs []groupInfo
	err := d.cliJSON(&gs, "groups")
	return gs, err
}

// group returns the daemon's view of the group named name.
func (d *daemon) group(name string) (groupInfo, error) {
	gs, err := d.groups()
	if err != nil {
		return groupInfo{}, err
	}
	for _, g := range gs {
		if g.Name == name {
			return g, nil
		}
	}
	return groupInfo{}, fmt.Errorf("%s has no group %s", d.name, name)
}

// groupStatus returns the daemon's status of the group named name.
func (d *daemon) groupStatus(name string) (groupStatus, error) {
	var st nodeStatus
	if err := d.cliJSON(&st, "status"); err != nil {
		return groupStatus{}, err
	}
	for _, g := range st.Groups {
		if g.Name == name {
			return g, nil
		}
	}
	return groupStatus{}, fmt.Errorf("%s's status has no group %s", d.name, name)
}

func (d *daemon) status() (nodeStatus, error) {
	var st nodeStatus
	err := d.cliJSON(&st, "status")
	return st, err
}

func (d *daemon) messages(group string) ([]message, error) {
	var ms []message
	err := d.cliJSON(&ms, "read", group)
	return ms, err
}

// logCounts counts the lines of the daemon's log at level ERROR and
// WARN, the messages it rejected, and the lines that start a panic.
func (d *daemon) logCounts() (c struct{ errs, warns, rejected, panics int }) {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		return c
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		switch {
		case strings.Contains(line, "level=ERROR"):
			c.errs++
		case strings.Contains(line, "level=WARN"):
			c.warns++
		}
		if strings.Contains(line, `msg="message rejected"`) {
			c.rejected++
		}
		if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
			c.panics++
		}
	}
	return c
}

// The JSON the CLI prints (the api package's types, docs/API.md), with
// only the fields the oracle reads. They are declared here so that the
// test reads the CLI's output as any script would, and keeps building
// while fields are added to the api package.
type (
	groupInfo struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Epoch   uint64 `json:"epoch"`
		Members int    `json:"members"`
		Pending bool   `json:"pending"`
		Removed bool   `json:"removed"`
		Damaged string `json:"damaged"`
	}
	groupStatus struct {
		groupInfo
		FinalEpoch   uint64 `json:"final_epoch"`
		Forks        int    `json:"forks"`
		Rollbacks    int    `json:"rollbacks"`
		Syncing      bool   `json:"syncing"`
		Missing      int    `json:"missing"`
		MissingBytes uint64 `json:"missing_bytes"`
		BehindEpochs uint64 `json:"behind_epochs"`
		Outbox       int    `json:"outbox"`
		OnlinePeers  int    `json:"online_peers"`
		State        string `json:"state"`
		Reason       string `json:"reason"`
		Waiting      []struct {
			Change  string    `json:"change"`
			Member  string    `json:"member"`
			AskedAt time.Time `json:"asked_at"`
		} `json:"waiting"`
	}
	nodeStatus struct {
		PeerID       string        `json:"peer_id"`
		Peers        int           `json:"peers"`
		StoreBytes   int64         `json:"store_bytes"`
		Goroutines   int           `json:"goroutines"`
		HeapBytes    uint64        `json:"heap_bytes"`
		Reachability string        `json:"reachability"`
		RelayAddrs   []string      `json:"relay_addrs"`
		Groups       []groupStatus `json:"groups"`
	}
	message struct {
		Seq    uint64    `json:"seq"`
		ID     string    `json:"id"`
		Sender string    `json:"sender"`
		Epoch  uint64    `json:"epoch"`
		Final  bool      `json:"final"`
		Text   string    `json:"text"`
		File   *fileInfo `json:"file"`
	}
	fileInfo struct {
		Name     string `json:"name"`
		Size     int64  `json:"size"`
		SHA256   string `json:"sha256"`
		Received int64  `json:"received"`
		Path     string `json:"path"`
	}
)
