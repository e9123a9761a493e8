package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// chatHarness drives the chat's model as the program would, without a
// terminal: the requests the model makes run in line against the
// in-memory backend, and the backend's events are fed back to it after
// each step.
type chatHarness struct {
	t      *testing.T
	b      *apitest.Backend
	m      *chatModel
	events <-chan api.Event
	quit   bool
}

// newChatHarness opens the group "friends" of a backend that setup
// prepared, in a terminal of 100×40.
func newChatHarness(t *testing.T, setup func(b *apitest.Backend)) *chatHarness {
	t.Helper()
	b := apitest.New()
	ctx := t.Context()
	if _, err := b.CreateGroup(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(b)
	}
	groups, err := b.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g, err := findGroup(groups, "friends")
	if err != nil {
		t.Fatal(err)
	}
	history, err := b.Read(ctx, g.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	events, err := b.Subscribe(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	m := newChatModel(ctx, &chatSession{client: b, group: g, history: history})
	m.events, m.refreshEvery = nil, 0 // the harness feeds the events; no ticks
	m.now = func() time.Time { return time.Date(2025, 3, 14, 18, 0, 0, 0, time.UTC) }
	h := &chatHarness{t: t, b: b, m: m, events: events}
	h.do(tea.WindowSizeMsg{Width: 100, Height: 40})
	h.run(m.Init())
	return h
}

// do gives the model msg and runs what it asks for.
func (h *chatHarness) do(msg tea.Msg) {
	h.t.Helper()
	_, cmd := h.m.Update(msg)
	h.run(cmd)
	h.pump()
}

// run runs a command, and gives the model its answer.
func (h *chatHarness) run(cmd tea.Cmd) {
	h.t.Helper()
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			h.run(c)
		}
	case tea.QuitMsg:
		h.quit = true
	default:
		h.do(msg)
	}
}

// pump feeds the model the events the backend has published.
func (h *chatHarness) pump() {
	h.t.Helper()
	for {
		select {
		case ev := <-h.events:
			_, cmd := h.m.Update(eventMsg(ev))
			h.run(cmd)
		default:
			return
		}
	}
}

// typeLine types line and presses Enter.
func (h *chatHarness) typeLine(line string) {
	h.t.Helper()
	h.do(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(line)})
	h.do(tea.KeyMsg{Type: tea.KeyEnter})
}

var ansiStyle = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// screen returns what the terminal shows, without colors.
func (h *chatHarness) screen() string {
	return ansiStyle.ReplaceAllString(h.m.View(), "")
}

// wantScreen checks the screen against patterns (multi-line mode).
func (h *chatHarness) wantScreen(what string, patterns ...string) {
	h.t.Helper()
	s := h.screen()
	for _, p := range patterns {
		if !regexp.MustCompile("(?m)" + p).MatchString(s) {
			h.t.Errorf("%s: the screen lacks %q:\n%s", what, p, s)
		}
	}
}

func (h *chatHarness) history() []api.Message {
	h.t.Helper()
	msgs, err := h.b.Read(h.t.Context(), "friends", 0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return msgs
}

func (h *chatHarness) deliver(sender, text string) api.Message {
	h.t.Helper()
	m, err := h.b.Deliver("friends", sender, text)
	if err != nil {
		h.t.Fatal(err)
	}
	h.pump()
	return m
}

func TestChatShowsHistoryThenMarksFinalLive(t *testing.T) {
	h := newChatHarness(t, func(b *apitest.Backend) {
		b.Deliver("friends", "bob", "one")
		b.Send(t.Context(), "friends", "two")
	})
	h.wantScreen("the history", `^\d\d:\d\d ~ bob   +one *│`, `^\d\d:\d\d ~ alice +two *│`)

	h.deliver("bob", "three")
	h.wantScreen("a live message", `^\d\d:\d\d ~ bob   +three *│`)

	if err := h.b.Finalize("friends"); err != nil {
		t.Fatal(err)
	}
	h.pump()
	h.wantScreen("after the final events", `^\d\d:\d\d ✓ bob   +one`, `^\d\d:\d\d ✓ alice +two`, `^\d\d:\d\d ✓ bob   +three`)

	// The daemon names a final message by id alone.
	four := h.deliver("carol", "four")
	h.do(eventMsg{Type: api.EventFinal, Group: four.Group, Message: &api.Message{ID: four.ID, Final: true}})
	h.wantScreen("a final event with an id only", `^\d\d:\d\d ✓ carol +four`)
	if n := strings.Count(h.screen(), "four"); n != 1 {
		t.Errorf("the message shows %d times, want once", n)
	}
}

func TestChatSendsWhatIsTypedInOrder(t *testing.T) {
	h := newChatHarness(t, nil)
	h.typeLine("hello there")
	if msgs := h.history(); len(msgs) != 1 || msgs[0].Text != "hello there" || !msgs[0].Own {
		t.Fatalf("the daemon has %+v, want our 'hello there'", msgs)
	}
	h.wantScreen("a sent message", `^\d\d:\d\d ~ alice +hello there`)
	if v := h.m.input.Value(); v != "" {
		t.Errorf("the input holds %q after Enter, want it empty", v)
	}

	// Two lines typed before the first is sent go out one after the
	// other, each shown as being sent until the daemon takes it.
	h.m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("first")})
	_, first := h.m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	h.m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("second")})
	_, second := h.m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	if first == nil || second != nil {
		t.Fatalf("commands after two lines: %v, %v; want one send, the other waiting", first != nil, second != nil)
	}
	h.wantScreen("two lines being sent", `^\d\d:\d\d … alice +first`, `^\d\d:\d\d … alice +second`)
	h.run(first)
	var got []string
	for _, m := range h.history() {
		got = append(got, m.Text)
	}
	if want := "hello there|first|second"; strings.Join(got, "|") != want {
		t.Errorf("the daemon got %q, want %q", strings.Join(got, "|"), want)
	}
	h.wantScreen("both sent", `^\d\d:\d\d ~ alice +first`, `^\d\d:\d\d ~ alice +second`)
	if n := strings.Count(h.screen(), "second"); n != 1 {
		t.Errorf("'second' shows %d times, want once:\n%s", n, h.screen())
	}

	h.typeLine("//help is a text")
	if msgs := h.history(); msgs[len(msgs)-1].Text != "/help is a text" {
		t.Errorf("'//help is a text' sent %q, want '/help is a text'", msgs[len(msgs)-1].Text)
	}
}

func TestChatOwnMessageEventBeforeTheSendAnswers(t *testing.T) {
	// The daemon tells its subscribers of our message before Send
	// returns: the chat must still show it once.
	h := newChatHarness(t, nil)
	h.m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("early")})
	_, send := h.m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	msg := api.Message{ID: "00aa", Group: h.m.group.ID, Sender: "alice", Own: true, Text: "early", SentAt: h.m.now()}
	h.m.Update(eventMsg{Type: api.EventMessage, Group: msg.Group, Message: &msg})
	h.m.Update(sentMsg{local: 1, id: "00aa"})
	if send == nil {
		t.Fatal("Enter sent nothing")
	}
	h.wantScreen("our message", `^\d\d:\d\d ~ alice +early`)
	if n := strings.Count(h.screen(), "early"); n != 1 {
		t.Errorf("the message shows %d times, want once:\n%s", n, h.screen())
	}
	h.m.Update(eventMsg{Type: api.EventFinal, Group: msg.Group, Message: &api.Message{ID: "00aa"}})
	h.wantScreen("final", `^\d\d:\d\d ✓ alice +early`)

	// An event that does not look like the line typed (the daemon
	// changed it) takes the line's place once Send names it.
	h.m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("later ")})
	h.m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	msg = api.Message{ID: "00bb", Group: msg.Group, Sender: "alice", Own: true, Text: "later", SentAt: h.m.now()}
	h.m.Update(eventMsg{Type: api.EventMessage, Group: msg.Group, Message: &msg})
	h.m.Update(sentMsg{local: 2, id: "00bb"})
	if n := strings.Count(h.screen(), "later"); n != 1 {
		t.Errorf("the changed message shows %d times, want once:\n%s", n, h.screen())
	}
}

func TestChatShowsErrorsInTheStatusLine(t *testing.T) {
	h := newChatHarness(t, nil)
	h.b.Fail = func(method string) error {
		if method == api.MethodSend {
			return fmt.Errorf("group friends: %w", api.ErrNotMember)
		}
		return nil
	}
	h.typeLine("anyone?")
	h.wantScreen("a refused send",
		`^\d\d:\d\d ✗ alice +anyone\? \(not sent\)`,
		`^✗ you are no longer in this group: you can read, not send$`,
		`^ friends .*· not a member`)

	h.typeLine("/nonsense")
	h.wantScreen("an unknown command", `^✗ no command /nonsense; /help lists them`, `^> /nonsense`)

	h.b.Fail = func(string) error { return api.ErrClosed }
	h.m.input.Reset()
	h.typeLine("still there?")
	h.do(streamEndMsg{})
	h.wantScreen("the daemon gone", `^✗ lost the daemon; is it still running\?`, `· daemon gone`)
	h.do(eventMsg{Type: api.EventNotice, Group: h.m.group.ID, Text: "late notice"})
	h.wantScreen("a notice after the daemon went", `^✗ lost the daemon`)
	if h.quit {
		t.Error("the chat quit on an error")
	}
}

func TestChatMembersPaneFollowsTheGroup(t *testing.T) {
	h := newChatHarness(t, func(b *apitest.Backend) {
		ctx := t.Context()
		for _, code := range []string{"pc1-bob", "pc1-carol"} {
			if _, err := b.AddContact(ctx, code, ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Invite(ctx, "friends", "bob"); err != nil {
			t.Fatal(err)
		}
	})
	h.wantScreen("the members", `│ Members \(2\)\s*$`, `│ ● alice \(you\)\s*$`, `│ ● bob\s*$`,
		`^ friends  epoch 1 · 2 members, 2 online`)

	if err := h.b.Invite(t.Context(), "friends", "carol"); err != nil {
		t.Fatal(err)
	}
	h.pump()
	h.wantScreen("a member added", `^-- carol joined \(epoch 2\)`, `│ ○ carol\s*$`, `│ Members \(3\)`,
		`^ friends  epoch 2 · 3 members, 2 online`)

	h.typeLine("/members")
	h.wantScreen("/members", `^-- members:`, `^   bob, online, added by alice, fingerprint \d{5} `)

	if err := h.b.Remove(t.Context(), "friends", "bob"); err != nil {
		t.Fatal(err)
	}
	h.pump()
	h.wantScreen("a member removed", `^-- bob is no longer in the group \(epoch 3\)`, `│ Members \(2\)`)
	if strings.Contains(h.screen(), "● bob") {
		t.Errorf("bob is still in the members pane:\n%s", h.screen())
	}
}

func TestChatShowsNoticesAndRemoval(t *testing.T) {
	h := newChatHarness(t, nil)
	id := h.m.group.ID
	h.do(eventMsg{Type: api.EventNotice, Group: id, Text: "two commits on epoch 4; the fork choice will pick one"})
	h.wantScreen("a fork notice", `^-- ! two commits on epoch 4`, `^! two commits on epoch 4; the fork choice will pick one$`)

	h.do(eventMsg{Type: api.EventJoinRequest, Group: id, JoinRequest: &api.JoinRequest{ID: "8c1f0e5a7d3b2a19", Group: id, Name: "dave", Fingerprint: "55102 11111"}})
	h.wantScreen("a join request", `^-- ! dave asks to join \(fingerprint 55102 11111\): parley approve +│`, `^ +8c1f0e5a7d3b2a19, or parley deny 8c1f0e5a7d3b2a19 +│`, `^! dave asks to join`)

	h.do(eventMsg{Type: api.EventNotice, Group: "another", Text: "not ours"})
	if strings.Contains(h.screen(), "not ours") {
		t.Error("a notice of another group shows")
	}

	if err := h.b.Leave(t.Context(), "friends"); err != nil {
		t.Fatal(err)
	}
	h.pump()
	h.wantScreen("removed", `^✗ you are no longer in this group`, `· not a member`)
}

func TestChatFilesShowTheirProgress(t *testing.T) {
	h := newChatHarness(t, nil)
	id := h.m.group.ID
	photo := api.Message{ID: "f1", Group: id, Sender: "bob", SentAt: h.m.now(),
		File: &api.FileInfo{Name: "photo.jpg", Size: 2 << 20}}
	h.do(eventMsg{Type: api.EventMessage, Group: id, Message: &photo})
	h.wantScreen("a file announced", `~ bob   +\[file photo.jpg, 2.0 MiB, 0% received\]`)
	h.do(eventMsg{Type: api.EventFile, Group: id, File: &api.Progress{ID: "f1", Name: "photo.jpg", Done: 1 << 20, Total: 2 << 20}})
	h.wantScreen("half of it", `\[file photo.jpg, 2.0 MiB, 50% received\]`)
	h.do(eventMsg{Type: api.EventFile, Group: id, File: &api.Progress{ID: "f1", Name: "photo.jpg", Done: 2 << 20, Total: 2 << 20}})
	h.wantScreen("all of it", `\[file photo.jpg, 2.0 MiB\] *│`)

	dir := t.TempDir()
	path := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(path, []byte("some notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	h.typeLine("/file notes.txt")
	msgs := h.history()
	if len(msgs) != 1 || msgs[0].File == nil || msgs[0].File.Path != path {
		t.Fatalf("the daemon has %+v, want the file at %s", msgs, path)
	}
	h.wantScreen("our file", `~ alice +\[file notes.txt, 10 B\]`)

	h.typeLine("/file nowhere.txt")
	h.wantScreen("a missing file", `^✗ no file nowhere.txt$`)
	h.m.input.Reset()
	h.typeLine("/file " + dir)
	h.wantScreen("a directory", `^✗ .* is a directory; send one file at a time$`)
}

func TestChatKeys(t *testing.T) {
	for _, k := range []tea.KeyMsg{{Type: tea.KeyCtrlC}, {Type: tea.KeyEsc}} {
		h := newChatHarness(t, nil)
		h.do(k)
		if !h.quit || h.m.View() != "" {
			t.Errorf("%s: quit %v, view %q; want the chat to quit", k, h.quit, h.m.View())
		}
	}
	h := newChatHarness(t, nil)
	h.typeLine("/quit")
	if !h.quit {
		t.Error("/quit did not quit")
	}

	h = newChatHarness(t, func(b *apitest.Backend) {
		for i := range 100 {
			b.Deliver("friends", "bob", fmt.Sprint("message ", i))
		}
	})
	h.do(tea.WindowSizeMsg{Width: 80, Height: 12})
	h.wantScreen("the end of the history", `message 99 *│`)
	h.do(tea.KeyMsg{Type: tea.KeyPgUp})
	if strings.Contains(h.screen(), "message 99") {
		t.Errorf("PgUp: the last message still shows:\n%s", h.screen())
	}
	h.deliver("bob", "while you scroll")
	h.wantScreen("a message below the view", `↓ 1 new \(PgDn\) $`)
	for range 3 {
		h.do(tea.KeyMsg{Type: tea.KeyPgDown})
	}
	h.wantScreen("PgDn to the end", `while you scroll *│`)
	if strings.Contains(h.screen(), "new (PgDn)") {
		t.Errorf("the new count stays at the bottom:\n%s", h.screen())
	}

	h.typeLine("/help")
	h.wantScreen("/help", `^-- Enter sends the line as a message`, `^   PgUp, PgDn +scroll the messages`)
}

func TestChatCleansWhatOthersWrite(t *testing.T) {
	h := newChatHarness(t, nil)
	h.deliver("mal\x1b[31mlory\u202e", "hi\x1b[2J\u202eevil\u2066\ttab")
	id := h.m.group.ID
	h.do(eventMsg{Type: api.EventNotice, Group: id, Text: "notice\x1b]0;title\x07"})
	h.do(eventMsg{Type: api.EventMembership, Group: id, Membership: &api.Membership{Epoch: 2, Added: []string{"eve\u202egnp.exe"}}})
	v := h.m.View()
	for _, bad := range []string{"\x1b[31m", "\x1b[2J", "\x1b]0", "\x07", "\u202e", "\u2066", "\t"} {
		if strings.Contains(v, bad) {
			t.Errorf("the screen holds %q:\n%s", bad, v)
		}
	}
	h.wantScreen("cleaned", `mal\x{FFFD}\[31mlory\x{FFFD} +hi\x{FFFD}\[2J\x{FFFD}evil\x{FFFD}    tab`,
		`^-- eve\x{FFFD}gnp.exe joined`, `notice\x{FFFD}\]0;title\x{FFFD}`)
}

func TestChatScreenFitsTheTerminal(t *testing.T) {
	h := newChatHarness(t, func(b *apitest.Backend) {
		b.Deliver("friends", "bob", strings.Repeat("a long line of text ", 20))
		b.Deliver("friends", "a-very-long-name-indeed", "hi")
	})
	h.typeLine("/members")
	h.typeLine("/help")
	for _, size := range []struct{ w, h int }{{20, 5}, {50, 10}, {63, 20}, {64, 20}, {120, 30}} {
		h.do(tea.WindowSizeMsg{Width: size.w, Height: size.h})
		lines := strings.Split(h.m.View(), "\n")
		if len(lines) != size.h {
			t.Errorf("%d×%d: %d lines", size.w, size.h, len(lines))
		}
		for i, l := range lines {
			if w := lipgloss.Width(l); w > size.w {
				t.Errorf("%d×%d: line %d is %d wide: %q", size.w, size.h, i, w, l)
			}
		}
		// Lines are wrapped to the pane, not cut by it.
		for _, e := range h.m.entries {
			for l := range strings.Lines(e.view) {
				if w := lipgloss.Width(strings.TrimSuffix(l, "\n")); w > h.m.pane.Width && size.w >= 40 {
					t.Errorf("%d×%d: a line %d wide in a pane %d wide: %q", size.w, size.h, w, h.m.pane.Width, l)
				}
			}
		}
		if pane := strings.Contains(h.screen(), "Members ("); pane != (size.w >= membersPaneMinWidth) {
			t.Errorf("%d×%d: members pane shown %v", size.w, size.h, pane)
		}
	}
}
