package cli

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestChatProgramTalksToTheDaemon runs the full-screen chat as the
// terminal would, its keys and screen on pipes, against a fake daemon on
// a socket: what is typed is sent, what arrives is drawn, Ctrl-C leaves.
func TestChatProgramTalksToTheDaemon(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	client, err := api.Dial(t.Context(), filepath.Join(d.data, socketFile))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	s, err := openChat(t.Context(), client, "friends")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	keys, typing := io.Pipe()
	defer typing.Close()
	screen := &syncBuffer{}
	p := newChatProgram(t.Context(), s, keys, screen)
	type result struct {
		m   tea.Model
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := p.Run()
		done <- result{m, err}
	}()
	p.Send(tea.WindowSizeMsg{Width: 80, Height: 20})

	if _, err := io.WriteString(typing, "hi bob\r"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon to get the message", func() bool {
		msgs, _ := d.b.Read(t.Context(), "friends", 0, 0)
		return len(msgs) == 1 && msgs[0].Text == "hi bob"
	})
	if _, err := d.b.Deliver("friends", "bob", "hi alice"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob's message on the screen", func() bool { return strings.Contains(screen.String(), "hi alice") })
	if err := d.b.Finalize("friends"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the final mark on the screen", func() bool { return strings.Contains(screen.String(), "✓") })

	if _, err := io.WriteString(typing, "\x03"); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("the program: %v", r.err)
	}
	m := r.m.(*chatModel)
	var got []string
	for _, e := range m.entries {
		got = append(got, e.msg.Sender+": "+e.msg.Text)
		if !e.msg.Final || e.msg.ID == "" {
			t.Errorf("entry %+v: want it delivered and final", e.msg)
		}
	}
	if want := "alice: hi bob|bob: hi alice"; strings.Join(got, "|") != want {
		t.Errorf("the chat shows %q, want %q", strings.Join(got, "|"), want)
	}
}
