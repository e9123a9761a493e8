package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
)

func TestChatErrorsBeforeItStarts(t *testing.T) {
	none := t.TempDir()
	runParley(t.Context(), "chat", "friends", "--data", none).check(t, "no daemon", 1,
		"", `^parley chat: parley daemon is not running \(no socket at .*\); start it with 'parley run --data .*'\n$`)

	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.must("join", "pi1-chess")
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"chat"}, 1, "", `^parley chat: missing GROUP \(usage: parley chat GROUP\)\n$`},
		{[]string{"chat", "a", "b"}, 1, "", `^parley chat: unexpected argument "b"`},
		{[]string{"chat", "nowhere"}, 1, "", `^parley chat: no group named "nowhere"; 'parley groups' lists yours\n$`},
		{[]string{"chat", "chess"}, 1, "", `^parley chat: you are not in "chess" yet: a member lets you in`},
		{[]string{"chat", "--bogus", "friends"}, 1, "", `^parley chat: flag provided but not defined: -bogus \(run 'parley chat -h'\)\n$`},
		{[]string{"chat", "--help"}, 0, `^Usage: parley chat GROUP \[--plain\] \[--data DIR\]\n(.*\n)*  --plain `, ""},
	}
	for _, tt := range tests {
		d.run(tt.args...).check(t, strings.Join(tt.args, " "), tt.code, tt.stdout, tt.stderr)
	}

	d.must("group", "create", "twins")
	d.must("join", "pi1-twins")
	d.run("chat", "twins").check(t, "an ambiguous name", 1, "", `^parley chat: several groups are named "twins"; name it by its id`)
}

func TestParseChatLine(t *testing.T) {
	tests := []struct {
		line string
		act  chatAction
		arg  string
		err  string
	}{
		{"", chatNothing, "", ""},
		{"   ", chatNothing, "", ""},
		{"hello", chatText, "hello", ""},
		{"  indented", chatText, "  indented", ""},
		{"//not a command", chatText, "/not a command", ""},
		{"/file a b.txt", chatFile, "a b.txt", ""},
		{"/file", chatNothing, "", "which file? /file PATH"},
		{"/members", chatMembers, "", ""},
		{"/help", chatHelp, "", ""},
		{"/quit", chatQuit, "", ""},
		{"/q", chatQuit, "", ""},
		{"/nope\x1b", chatNothing, "", "no command /nope\uFFFD; /help lists them ('//' sends a text that starts with '/')"},
		{"bad \xff", chatNothing, "", "the message is not valid UTF-8"},
	}
	for _, tt := range tests {
		act, arg, err := parseChatLine(tt.line)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if act != tt.act || arg != tt.arg || gotErr != tt.err {
			t.Errorf("parseChatLine(%q) = %v, %q, %q; want %v, %q, %q", tt.line, act, arg, gotErr, tt.act, tt.arg, tt.err)
		}
	}
}

func TestChatFileText(t *testing.T) {
	f := &api.FileInfo{Name: "a\x1b.bin", Size: 4 << 20, Received: 1 << 20}
	done := &api.FileInfo{Name: "a.bin", Size: 4 << 20, Received: 4 << 20, Path: "/data/files/a.bin"}
	tests := []struct {
		f    *api.FileInfo
		p    *api.Progress
		own  bool
		want string
	}{
		{f, nil, false, "[file a\uFFFD.bin, 4.0 MiB, 25% received]"},
		{f, &api.Progress{Done: 3 << 20, Total: 4 << 20}, false, "[file a\uFFFD.bin, 4.0 MiB, 75% received]"},
		{done, nil, false, "[file a.bin, 4.0 MiB] /data/files/a.bin"},
		{f, nil, true, "[file a\uFFFD.bin, 4.0 MiB]"},
		{f, &api.Progress{Done: 1 << 20, Total: 4 << 20}, true, "[file a\uFFFD.bin, 4.0 MiB, sending 25%]"},
		{&api.FileInfo{Name: "empty"}, nil, false, "[file empty, 0 B]"},
	}
	for _, tt := range tests {
		if got := chatFileText(tt.f, tt.p, tt.own); got != tt.want {
			t.Errorf("chatFileText(%+v, %+v, %v) = %q, want %q", tt.f, tt.p, tt.own, got, tt.want)
		}
	}
}

func TestChatProblem(t *testing.T) {
	tests := []struct {
		err           error
		gone, removed bool
		want          string
	}{
		{api.ErrNotMember, false, true, "you are no longer in this group"},
		{api.ErrClosed, true, false, "lost the daemon"},
		{fmt.Errorf("dial: %w", api.ErrNotRunning), true, false, "lost the daemon"},
		{errors.New("boom\nline"), false, false, "boom line"},
	}
	for _, tt := range tests {
		text, gone, removed := chatProblem(tt.err)
		if gone != tt.gone || removed != tt.removed || !strings.HasPrefix(text, tt.want) {
			t.Errorf("chatProblem(%v) = %q, %v, %v; want %q..., %v, %v", tt.err, text, gone, removed, tt.want, tt.gone, tt.removed)
		}
	}
}
