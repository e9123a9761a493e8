package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// tm matches the time at the start of a line ("15:04", "Mon 15:04",
// "2006-01-02 15:04") and the space after it.
const tm = `(?:[A-Z][a-z]{2} |[A-Z][a-z]{2} \d+ |\d{4}-\d\d-\d\d )?\d\d:\d\d `

// chatting is 'parley chat' running in line mode against a fake daemon,
// with a pipe for its input.
type chatting struct {
	t              *testing.T
	in             *io.PipeWriter
	stdout, stderr *syncBuffer
	done           chan int
	cancel         context.CancelFunc
}

// startChat runs 'parley chat' with args (--data added) until its input
// ends, it quits, or the test ends.
func (d *daemon) startChat(args ...string) *chatting {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	c := &chatting{t: d.t, in: w, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1), cancel: cancel}
	before := d.b.Subscribers()
	go func() {
		err := oneLine(chat(ctx, withData(append([]string{}, args...), d.data), r, c.stdout, c.stderr))
		code := 0
		if err != nil {
			c.stderr.Write([]byte("parley chat: " + err.Error() + "\n"))
			code = 1
		}
		r.Close()
		c.done <- code
	}()
	d.t.Cleanup(func() {
		cancel()
		w.Close()
	})
	waitFor(d.t, "the chat to subscribe", func() bool { return d.b.Subscribers() > before })
	return c
}

// say types a line into the chat.
func (c *chatting) say(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatalf("typing %q: %v", line, err)
	}
}

// waitOut waits for the chat's output to match pattern (multi-line mode).
func (c *chatting) waitOut(what, pattern string) {
	c.t.Helper()
	re := regexp.MustCompile("(?m)" + pattern)
	waitFor(c.t, what+" in the output", func() bool { return re.MatchString(c.stdout.String()) })
}

// end closes the chat's input and returns its exit status.
func (c *chatting) end() int {
	c.t.Helper()
	c.in.Close()
	return <-c.done
}

func TestChatPlainSendsLinesAndFollowsTheGroup(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.must("group", "create", "other")
	if _, err := d.b.Deliver("friends", "bob", "before you came"); err != nil {
		t.Fatal(err)
	}

	c := d.startChat("friends")
	c.waitOut("the history", "^"+tm+`~ bob +before you came$`)

	c.say("hello bob")
	waitFor(t, "the daemon to get our message", func() bool {
		msgs, _ := d.b.Read(t.Context(), "friends", 0, 0)
		return len(msgs) == 2 && msgs[1].Text == "hello bob" && msgs[1].Own
	})
	c.waitOut("our message", "^"+tm+`~ alice +hello bob$`)

	if _, err := d.b.Deliver("other", "mallory", "not for this chat"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.b.Deliver("friends", "bob", "hi alice\x1b[2J"); err != nil {
		t.Fatal(err)
	}
	c.waitOut("bob's answer", "^"+tm+`~ bob +hi alice\x{FFFD}\[2J$`)

	if err := d.b.Finalize("friends"); err != nil {
		t.Fatal(err)
	}
	c.waitOut("the final marks", "^"+tm+`✓ bob +hi alice`)
	if code := c.end(); code != 0 {
		t.Fatalf("exit %d at the end of the input, stderr %q", code, c.stderr.String())
	}

	want := []string{
		"~ bob before you came", "~ alice hello bob", "~ bob hi alice\uFFFD[2J",
		"✓ bob before you came", "✓ alice hello bob", "✓ bob hi alice\uFFFD[2J",
	}
	var got []string
	line := regexp.MustCompile(`^` + tm + `(.*)\n$`)
	for l := range strings.Lines(c.stdout.String()) {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q has no time", l)
		}
		got = append(got, strings.Join(strings.Fields(m[1]), " "))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("output lines (past the time):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.stderr.String() != "" {
		t.Errorf("stderr %q, want it empty", c.stderr.String())
	}
}

func TestChatPlainCommands(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.must("contact", "add", "pc1-bob")
	d.must("invite", "friends", "bob")
	dir := t.TempDir()
	path := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(path, []byte("notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	c := d.startChat("friends", "--plain")
	c.say("/members")
	c.waitOut("/members", `^-- alice \(you\), online, fingerprint \d{5}( \d{5}){11}\n-- bob, online, added by alice, fingerprint `)
	c.say("/help")
	c.waitOut("/help", `^-- /file PATH +send the file at PATH$`)
	c.say("/frobnicate")
	waitFor(t, "the unknown command's error", func() bool {
		return strings.Contains(c.stderr.String(), "parley chat: no command /frobnicate; /help lists them")
	})
	c.say("/file notes.txt")
	c.waitOut("the file", "^"+tm+`~ alice +\[file notes.txt, 5 B\]$`)
	c.waitOut("its progress", `^-- sent notes.txt \(5 B\)$`)
	c.say("/file missing.txt")
	waitFor(t, "the missing file's error", func() bool { return strings.Contains(c.stderr.String(), "parley chat: no file missing.txt\n") })

	if err := d.b.Remove(t.Context(), "friends", "bob"); err != nil {
		t.Fatal(err)
	}
	c.waitOut("the removal", `^-- bob is no longer in the group \(epoch 2\)$`)
	c.say("//quit is a text")
	c.waitOut("a text that starts with /", `alice +/quit is a text$`)
	c.say("/quit")
	if code := <-c.done; code != 0 {
		t.Fatalf("/quit: exit %d, stderr %q", code, c.stderr.String())
	}
	msgs, err := d.b.Read(t.Context(), "friends", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].File == nil || msgs[0].File.Path != path {
		t.Errorf("the daemon has %+v, want the file and the text", msgs)
	}
}

func TestChatPlainKeepsGoingWhenASendFails(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	var refuse atomic.Bool
	refuse.Store(true)
	d.b.Fail = func(method string) error {
		if method == api.MethodSend && refuse.Load() {
			return api.ErrNotMember
		}
		return nil
	}
	c := d.startChat("friends")
	c.say("anyone?")
	waitFor(t, "the error", func() bool {
		return c.stderr.String() == "parley chat: you are no longer in this group: you can read, not send\n"
	})
	refuse.Store(false)
	c.say("now?")
	c.waitOut("the next message", `alice +now\?$`)
	if code := c.end(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestChatPlainEndsWhenTheDaemonGoes(t *testing.T) {
	d := &daemon{t: t, data: t.TempDir(), b: apitest.New()}
	s := api.NewServer(d.b, nil)
	if err := s.ListenUnix(filepath.Join(d.data, socketFile)); err != nil {
		t.Fatal(err)
	}
	d.must("group", "create", "friends")
	c := d.startChat("friends")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if code := <-c.done; code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if got := c.stderr.String(); !strings.HasPrefix(got, "parley chat: the daemon closed the connection") || strings.Count(got, "\n") != 1 {
		t.Errorf("stderr %q, want one line saying the daemon went", got)
	}
}

// TestMembershipLinesSayWhoAsked: a removal reads "alice removed bob",
// a departure "carol left the group", one the node cannot attribute
// (after a restart) "dave is no longer in the group".
func TestMembershipLinesSayWhoAsked(t *testing.T) {
	got := membershipLines(&api.Membership{Epoch: 7, Added: []string{"erin"},
		Removed: []string{"bob", "carol", "dave"}, RemovedBy: []string{"alice", "carol", ""}})
	want := []string{"erin joined (epoch 7)", "alice removed bob (epoch 7)", "carol left the group (epoch 7)", "dave is no longer in the group (epoch 7)"}
	if !slices.Equal(got, want) {
		t.Errorf("membershipLines = %q, want %q", got, want)
	}
}

// TestChatPlainTellsOfJoinRequests: a join waiting for approval shows in
// the chat with the commands that decide it.
func TestChatPlainTellsOfJoinRequests(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	c := d.startChat("friends")
	id, err := d.b.RequestJoin("friends", "dave")
	if err != nil {
		t.Fatal(err)
	}
	c.waitOut("the join request", `^-- ! dave asks to join \(fingerprint \d{5}[ \d]*\): parley approve `+id+`, or parley deny `+id+`$`)
	if code := c.end(); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.stderr.String())
	}
}
