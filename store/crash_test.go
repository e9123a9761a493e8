package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test runs a write workload in a child process (this test
// binary, re-executed with crashChildEnv set) and kills it with SIGKILL at
// random moments. The child prints "ack N" after Write of round N returns.
// After each kill the parent reopens the store and checks that the state
// is exactly the state after some round h with h >= the last acknowledged
// round: nothing acknowledged is lost, nothing half-written is visible.
//
// Environment: PARLEY_CRASH_SEED=n replays a run, PARLEY_CRASH_ROUNDS=n
// changes the number of kills (default 100).
const (
	crashChildEnv   = "PARLEY_STORE_CRASH_CHILD"
	crashKeyFileEnv = "PARLEY_STORE_CRASH_KEYFILE"
	crashRetention  = 3 // epochs kept per group
)

var crashGroups = [][]byte{[]byte("crash-group-A"), []byte("crash-group-B")}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		if os.Getenv(groupedChildEnv) != "" {
			os.Exit(groupedChild(dir, os.Getenv(crashKeyFileEnv)))
		}
		os.Exit(crashChild(dir, os.Getenv(crashKeyFileEnv)))
	}
	os.Exit(m.Run())
}

// crashOptions are the options of both the child and the parent: a real
// encrypted store, with small memtables and value-log files so that kills
// also land in memtable flushes, compactions and value-log rotations.
func crashOptions(keyFile string) []Option {
	return []Option{WithKeyFile(keyFile), WithGCInterval(0), withSizes(1<<20, 1<<20)}
}

// crashChild writes rounds until it is killed.
func crashChild(dir, keyFile string) int {
	s, err := Open(dir, crashOptions(keyFile)...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 3
	}
	h, err := crashRound(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child read head:", err)
		return 3
	}
	for r := h + 1; ; r++ {
		if err := s.Write(ctx, crashBatches(r)...); err != nil {
			fmt.Fprintf(os.Stderr, "child write round %d: %v\n", r, err)
			return 3
		}
		if r%50 == 0 {
			// Reach the value-log GC path under kills as well.
			if err := s.CollectGarbage(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "child gc: %v\n", err)
				return 3
			}
		}
		fmt.Fprintf(os.Stdout, "ack %d\n", r) // os.Stdout is unbuffered
	}
}

// The state after round r is a pure function of r.

func crashEpochID(g []byte, r uint64) []byte { return fmt.Appendf(nil, "%s/epoch/%d", g, r) }
func crashLogID(r uint64, i int) []byte      { return fmt.Appendf(nil, "env-%d-%d", r, i) }
func crashMsgID(r uint64) []byte             { return crashLogID(r, 0) }
func crashKP(r uint64) []byte                { return fmt.Appendf(nil, "kp-%d", r) }
func crashEntries(r uint64) int              { return 1 + int(r%4) }

// crashLogLen is the number of log entries of a group after round r: the
// sum of crashEntries(j) for j in 1..r.
func crashLogLen(r uint64) uint64 {
	rem := r % 4
	return r + 6*(r/4) + rem*(rem+1)/2
}

func crashHead(g []byte, r uint64) []byte {
	return fmt.Appendf(nil, "round=%d epoch=%s", r, crashEpochID(g, r))
}

func crashEnvelope(r uint64, i int) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "envelope %d/%d;", r, i), 10+int(r%7)*20)
}

// crashSnapshot is pseudo-random content of a size that sends most
// snapshots to the LSM tree and every fifth to the value log.
func crashSnapshot(g []byte, r uint64) []byte {
	size := 512 + int(r%11)*300
	if r%5 == 0 {
		size = 2*valueThreshold + int(r%3)*1000
	}
	rng := rand.New(rand.NewPCG(r, uint64(len(g))+uint64(g[len(g)-1])))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func crashBatches(r uint64) []*Batch {
	var out []*Batch
	prev := crashLogLen(r - 1)
	for gi, g := range crashGroups {
		b := &Batch{}
		b.PutEpoch(g, crashEpochID(g, r), r, crashSnapshot(g, r))
		if r > crashRetention {
			b.DeleteEpoch(g, crashEpochID(g, r-crashRetention))
		}
		b.SetHead(g, crashHead(g, r))
		for i := range crashEntries(r) {
			b.AppendLog(g, LogEntry{ID: crashLogID(r, i), Envelope: crashEnvelope(r, i)})
		}
		// The previous round's entries become final.
		for seq := crashLogLen(max(r, 2)-2) + 1; seq <= prev; seq++ {
			b.SetLogResult(g, seq, fmt.Appendf(nil, "final %d", seq))
		}
		b.PutOutbox(g, crashMsgID(r), fmt.Appendf(nil, "outbox %d", r))
		if r > 2 {
			b.DeleteOutbox(g, crashMsgID(r-2))
		}
		b.MarkDelivered(g, crashMsgID(r), r)
		if r > crashRetention {
			b.PruneDelivered(g, r-crashRetention+1)
		}
		if gi == 0 {
			b.PutKeyPackage(crashKP(r), fmt.Appendf(nil, "private %d", r))
			if r > 1 {
				b.DeleteKeyPackage(crashKP(r - 1))
			}
		}
		out = append(out, b)
	}
	return out
}

// crashRound returns the round whose state the store holds (0 if none).
func crashRound(s *Store) (uint64, error) {
	h, err := s.Head(ctx, crashGroups[0])
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var r uint64
	if _, err := fmt.Sscanf(string(h), "round=%d ", &r); err != nil {
		return 0, fmt.Errorf("head %q: %w", h, err)
	}
	return r, nil
}

// checkCrashState checks that s holds exactly the state after round r.
func checkCrashState(s *Store, r uint64) error {
	if r == 0 {
		if gs, err := s.Groups(ctx); err != nil || len(gs) != 0 {
			return fmt.Errorf("no round acknowledged, but groups %q (%v)", gs, err)
		}
		return nil
	}
	gs, err := s.Groups(ctx)
	if err != nil || len(gs) != len(crashGroups) {
		return fmt.Errorf("groups %q, %v", gs, err)
	}
	for _, g := range crashGroups {
		if head, err := s.Head(ctx, g); err != nil || !bytes.Equal(head, crashHead(g, r)) {
			return fmt.Errorf("group %s: head %q (%v), want round %d", g, head, err, r)
		}
		eps, err := s.Epochs(ctx, g)
		if err != nil {
			return err
		}
		first := uint64(1)
		if r > crashRetention {
			first = r - crashRetention + 1
		}
		if uint64(len(eps)) != r-first+1 {
			return fmt.Errorf("group %s: %d epochs, want %d..%d", g, len(eps), first, r)
		}
		for i, e := range eps {
			want := first + uint64(i)
			if e.Epoch != want || !bytes.Equal(e.ID, crashEpochID(g, want)) {
				return fmt.Errorf("group %s: epoch %d is %q, want %d", g, e.Epoch, e.ID, want)
			}
			snap, _, err := s.Epoch(ctx, g, e.ID)
			if err != nil || !bytes.Equal(snap, crashSnapshot(g, want)) {
				return fmt.Errorf("group %s: snapshot of epoch %d damaged (%d bytes, %v)", g, want, len(snap), err)
			}
		}
		if err := checkCrashLog(s, g, r); err != nil {
			return err
		}
		ob, err := s.Outbox(ctx, g)
		if err != nil {
			return err
		}
		var wantOut [][]byte
		for j := max(r, 2) - 1; j <= r; j++ {
			wantOut = append(wantOut, crashMsgID(j))
		}
		if len(ob) != len(wantOut) {
			return fmt.Errorf("group %s: outbox has %d messages, want %d", g, len(ob), len(wantOut))
		}
		for _, o := range ob {
			if _, err := s.LogByID(ctx, g, o.MsgID); err != nil {
				return fmt.Errorf("group %s: outbox message %s not in the log: %v", g, o.MsgID, err)
			}
		}
		for j := max(r, crashRetention+1) - crashRetention; j <= r; j++ {
			want := j+crashRetention > r
			if ok, err := s.Delivered(ctx, g, crashMsgID(j)); err != nil || ok != want {
				return fmt.Errorf("group %s: message of round %d delivered = %v (%v), want %v", g, j, ok, err, want)
			}
		}
	}
	if _, err := s.KeyPackage(ctx, crashKP(r)); err != nil {
		return fmt.Errorf("KeyPackage of round %d: %v", r, err)
	}
	if _, err := s.KeyPackage(ctx, crashKP(r-1)); r > 1 && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("spent KeyPackage of round %d still there (%v)", r-1, err)
	}
	return nil
}

func checkCrashLog(s *Store, g []byte, r uint64) error {
	n := crashLogLen(r)
	if last, err := s.LastSeq(ctx, g); err != nil || last != n {
		return fmt.Errorf("group %s: last seq %d (%v), want %d", g, last, err, n)
	}
	// The whole log is checked for the first rounds, then its tail: older
	// entries were checked by earlier rounds and the layout under them does
	// not change.
	from := crashLogLen(max(r, 20) - 20)
	log, err := s.Log(ctx, g, from+1, 0)
	if err != nil {
		return err
	}
	if uint64(len(log)) != n-from {
		return fmt.Errorf("group %s: log from %d has %d entries, want %d", g, from+1, len(log), n-from)
	}
	finalUpTo := crashLogLen(r - 1)
	seq := from
	for j := uint64(1); j <= r; j++ {
		if crashLogLen(j) <= from {
			continue
		}
		for i := range crashEntries(j) {
			seq++
			e := log[seq-from-1]
			if e.Seq != seq || !bytes.Equal(e.ID, crashLogID(j, i)) || !bytes.Equal(e.Envelope, crashEnvelope(j, i)) {
				return fmt.Errorf("group %s: log entry %d is (%d, %s), want (%d, %s)", g, seq-from-1, e.Seq, e.ID, seq, crashLogID(j, i))
			}
			var want []byte
			if seq <= finalUpTo {
				want = fmt.Appendf(nil, "final %d", seq)
			}
			if !bytes.Equal(e.Result, want) {
				return fmt.Errorf("group %s: result of log entry %d is %q, want %q", g, seq, e.Result, want)
			}
		}
	}
	return nil
}

func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PARLEY_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	rounds := 100
	if v := os.Getenv("PARLEY_CRASH_ROUNDS"); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (replay with PARLEY_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := filepath.Join(t.TempDir(), "db")
	keyFile := filepath.Join(t.TempDir(), "key")

	var verified uint64 // round of the state seen after the previous kill
	var acked, writes int
	for round := 1; round <= rounds; round++ {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d, kill %d: %s", seed, round, fmt.Sprintf(format, args...))
		}
		acks, stderr, err := runCrashChild(t, dir, keyFile, rng)
		if err != nil {
			fail("%v\nchild stderr:\n%s", err, stderr)
		}
		last := verified
		for _, a := range acks {
			if a != last+1 {
				fail("child acknowledged round %d after %d", a, last)
			}
			last = a
		}
		acked += len(acks)
		s, err := Open(dir, crashOptions(keyFile)...)
		if err != nil {
			fail("reopen: %v\nchild stderr:\n%s", err, stderr)
		}
		h, err := crashRound(s)
		switch {
		case err != nil:
			fail("read head: %v", err)
		case h < last:
			fail("store holds round %d, but round %d was acknowledged", h, last)
		case h > last+1:
			fail("store holds round %d, but the child had only begun round %d", h, last+1)
		}
		if err := checkCrashState(s, h); err != nil {
			fail("state after round %d (last acknowledged %d): %v", h, last, err)
		}
		if err := s.Close(); err != nil {
			fail("close: %v", err)
		}
		writes += int(h - verified)
		verified = h
	}
	t.Logf("%d kills, %d rounds committed, %d acknowledged before a kill; files: %v", rounds, writes, acked, fileKinds(t, dir))
	if acked < rounds {
		t.Fatalf("seed %d: only %d rounds acknowledged in %d kills: the workload barely ran", seed, acked, rounds)
	}
}

// runCrashChild starts the child, kills it with SIGKILL after a random
// delay, and returns the rounds it acknowledged. Half of the kills come
// right after an acknowledgement (to land inside the next Write), the
// others after a random time.
func runCrashChild(t *testing.T, dir, keyFile string, rng *rand.Rand) ([]uint64, string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashKeyFileEnv+"="+keyFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	lines := make(chan uint64)
	readDone := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "ack "), 10, 64)
			if err != nil {
				readDone <- fmt.Errorf("child printed %q", sc.Text())
				io.Copy(io.Discard, out)
				return
			}
			lines <- n
		}
		readDone <- sc.Err()
	}()

	killAfterAcks := -1
	delay := time.Duration(rng.IntN(300)) * time.Millisecond
	if rng.IntN(2) == 0 {
		killAfterAcks = 1 + rng.IntN(8)
		delay = 2 * time.Second // a bound, should the child be slow
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	var acks []uint64
	killed := false
	kill := func() {
		if !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	for lines != nil {
		select {
		case n, ok := <-lines:
			if !ok {
				lines = nil
				break
			}
			acks = append(acks, n)
			if len(acks) == killAfterAcks {
				kill()
			}
		case <-timer.C:
			kill()
		}
	}
	// stdout closed: the child died (or was killed while the timer ran).
	kill()
	rerr := <-readDone
	werr := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return acks, stderr.String(), fmt.Errorf("child did not die of SIGKILL: %v", werr)
	}
	return acks, stderr.String(), rerr
}

// fileKinds counts the files of dir by extension, to show which badger
// paths (memtable flushes to .sst, value-log rotation) the run reached.
func fileKinds(t *testing.T, dir string) map[string]int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range entries {
		out[filepath.Ext(e.Name())]++
	}
	return out
}
