package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

func TestSendFileShowsProgressUntilSent(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, make([]byte, 3*apitest.FileChunk+100), 0o600); err != nil {
		t.Fatal(err)
	}
	r := d.run("send", "friends", "--file", path)
	r.check(t, "send --file", 0, `^sent big.bin \(3.0 MiB\) to friends \(id [0-9a-f]{8}\)\n$`,
		`^big.bin \[-{30}\]   0% 0 B / 3.0 MiB\n(.*\n)*big.bin \[#{30}\] 100% 3.0 MiB / 3.0 MiB\n$`)
	if n := strings.Count(r.stderr, "\n"); n != 5 {
		t.Errorf("%d progress lines, want 5 (0, 33, 66, 99 and 100%%):\n%s", n, r.stderr)
	}
	waitFor(t, "the progress subscription to end", func() bool { return d.b.Subscribers() == 0 })

	r = d.run("send", "friends", "--file", path, "--no-wait")
	r.check(t, "send --file --no-wait", 0,
		`^sending big.bin \(3.0 MiB\) to friends in the background \(id [0-9a-f]{8}\); 'parley read friends' shows it\n$`, "")

	empty := filepath.Join(t.TempDir(), "empty.txt")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d.run("send", "friends", "--file", empty).check(t, "an empty file", 0, `^sent empty.txt \(0 B\)`, "")

	var sent struct{ ID string }
	if err := json.Unmarshal([]byte(d.must("send", "friends", "--file", path, "--json")), &sent); err != nil || sent.ID == "" {
		t.Errorf("send --file --json: %v %+v", err, sent)
	}
}

func TestSendFileTakesARelativePath(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	d.must("send", "friends", "--file", "notes.txt")
	msgs, err := d.b.Read(context.Background(), "friends", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "notes.txt"); len(msgs) != 1 || msgs[0].File == nil || msgs[0].File.Path != want {
		t.Fatalf("the daemon got %+v, want the file at %s", msgs, want)
	}
	d.run("read", "friends").check(t, "read a file message", 0,
		`^ +1 ~ .* alice +\[file notes.txt, 5 B\] `+regexp.QuoteMeta(filepath.Join(dir, "notes.txt"))+`\n$`, "")
}

// follow runs 'parley read --follow' with args until stop is called,
// which returns its result.
func (d *daemon) follow(args ...string) (stdout *syncBuffer, stop func() result) {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout = &syncBuffer{}
	var stderr syncBuffer
	done := make(chan int, 1)
	before := d.b.Subscribers()
	go func() {
		done <- Run(ctx, withData(append([]string{"read", "--follow"}, args...), d.data), stdout, &stderr)
	}()
	waitFor(d.t, "the follower to subscribe", func() bool { return d.b.Subscribers() > before })
	return stdout, func() result {
		cancel()
		code := <-done
		return result{code, stdout.String(), stderr.String()}
	}
}

func TestReadFollowShowsNewMessages(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.must("group", "create", "other")
	d.must("send", "friends", "before")

	out, stop := d.follow("friends")
	waitFor(t, "the history", func() bool { return strings.Contains(out.String(), "before") })
	if _, err := d.b.Deliver("other", "mallory", "not for this group"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.b.Deliver("friends", "bob", "hi alice\x1b[2J"); err != nil {
		t.Fatal(err)
	}
	d.must("send", "friends", "hi bob")
	waitFor(t, "the new messages", func() bool { return strings.Contains(out.String(), "hi bob") })
	r := stop()
	r.check(t, "read --follow", 0,
		"^ +1 ~ .* alice +before\n +2 ~ .* bob +hi alice\uFFFD\\[2J\n +3 ~ .* alice +hi bob\n$", "")
}

func TestReadFollowJSONLines(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.must("send", "friends", "one")

	out, stop := d.follow("friends", "--json")
	waitFor(t, "the history", func() bool { return strings.Contains(out.String(), `"one"`) })
	d.must("send", "friends", "two")
	waitFor(t, "the new message", func() bool { return strings.Contains(out.String(), `"two"`) })
	if err := d.b.Finalize("friends"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the final marks", func() bool { return strings.Count(out.String(), "\n") == 4 })
	r := stop()
	var got []string
	for line := range strings.Lines(r.stdout) {
		var m api.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, fmt.Sprintf("%d %s %v", m.Seq, m.Text, m.Final))
	}
	want := []string{"1 one false", "2 two false", "1 one true", "2 two true"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("JSON lines:\n%s\nwant seq, text, final: %q", r.stdout, want)
	}
}

func TestReadPagesThroughALongHistory(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	const n = 2*readPage + 7
	for i := range n {
		if _, err := d.b.Deliver("friends", "bob", fmt.Sprint("message ", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	var msgs []api.Message
	if err := json.Unmarshal([]byte(d.must("read", "friends", "--json")), &msgs); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n || msgs[n-1].Text != fmt.Sprint("message ", n) {
		t.Fatalf("read %d messages, want %d", len(msgs), n)
	}
	out := d.must("read", "friends", "--after", fmt.Sprint(n-2))
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, fmt.Sprint("message ", n)) {
		t.Errorf("read --after %d:\n%s", n-2, out)
	}
}

// TestReadShowsTheOrderSentOrOfArrival: a message that arrived late (sent
// before the one at position 2) is shown in its sent place by default and
// at its position with --order arrival.
func TestReadShowsTheOrderSentOrOfArrival(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	for _, text := range []string{"one", "three"} {
		if _, err := d.b.Deliver("friends", "bob", text); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.b.DeliverLate("friends", "bob", "two", 2); err != nil {
		t.Fatal(err)
	}
	d.run("read", "friends").check(t, "read", 0, `^ +1 ~ .*one\n +3 ~ .*two\n +2 ~ .*three\n$`, "")
	d.run("read", "friends", "--order", "arrival").check(t, "read --order arrival", 0, `^ +1 ~ .*one\n +2 ~ .*three\n +3 ~ .*two\n$`, "")
	d.run("read", "friends", "--order", "random").check(t, "read --order random", 1, "", `^parley read: --order "random": want sent or arrival\n$`)
}

func TestSendDashReadsStandardInput(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	tests := []struct {
		stdin, want, err string
	}{
		{"from a pipe\n", "from a pipe", ""},
		{"two lines\nand CRLF\r\n", "two lines\nand CRLF", ""},
		{strings.Repeat("x", maxText) + "\n", strings.Repeat("x", maxText), ""},
		{strings.Repeat("x", maxText+1), "", "standard input holds over 64 KiB, and a message is at most 64 KiB; send it as a file with --file PATH"},
		{"", "", "standard input is empty: nothing to send"},
	}
	for i, tt := range tests {
		var stdout, stderr strings.Builder
		err := send(t.Context(), []string{"--data", d.data, "friends", "-"}, strings.NewReader(tt.stdin), &stdout, &stderr)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("input %d: error %v, want %q", i, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
		msgs, err := d.b.Read(t.Context(), "friends", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := msgs[len(msgs)-1].Text; got != tt.want {
			t.Errorf("input %d: sent %.40q (%d bytes), want %.40q (%d bytes)", i, got, len(got), tt.want, len(tt.want))
		}
	}
	if !strings.Contains(sendUsage, "'-' alone reads the text from standard input") {
		t.Error("send -h does not tell of '-'")
	}
}
