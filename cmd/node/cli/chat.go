package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-p2p/parley/cmd/node/api"
)

const chatUsage = `Usage: parley chat GROUP [--plain] [--data DIR]

Opens GROUP (its name or id) in a full-screen chat: its messages, new
ones as they arrive, each with a delivery mark ('~' provisional, '✓'
final, '…' being sent, '✗' not sent); the members and who is online; the
group's epoch, and notices (forks, rollbacks, removal) as they come.

Type a message and press Enter to send it. A line that starts with '/'
is a command:
  /file PATH   send the file at PATH
  /members     list the members with their fingerprints
  /help        list the commands and keys
  /quit        leave the chat (also Ctrl-C or Esc)
Start a message with '//' to send a text that starts with '/'.
PgUp and PgDn scroll the messages.

When the input or the output is not a terminal, or with --plain, it
works line by line: it prints the history, then each new message as it
arrives (again, marked '✓', when it becomes final), and sends each line
it reads, until the end of the input.

  --plain      line mode, even on a terminal
` + commonFlags

func runChat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return chat(ctx, args, os.Stdin, stdout, stderr)
}

// chat is runChat with its input given, for the tests.
func chat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCommand("chat", chatUsage, false, stdout, stderr)
	plain := c.fs.Bool("plain", false, "")
	pos, client, err := c.connect(ctx, args, 1, 1, "GROUP")
	if err != nil {
		return err
	}
	defer client.Close()
	s, err := openChat(ctx, client, pos[0])
	if err != nil {
		return err
	}
	defer s.close()
	if *plain || !isTerminal(stdout) || !readerIsTerminal(stdin) {
		return runPlainChat(ctx, s, stdin, stdout, stderr)
	}
	return runTUI(ctx, s, stdin, stdout)
}

// readerIsTerminal tells whether r is a character device.
func readerIsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && isTerminal(f)
}

// chatSession is a group opened for chatting: the daemon, the group, its
// event stream (opened before the history was read, so that nothing
// falls between) and its history.
type chatSession struct {
	client  api.Backend
	group   api.Group
	events  <-chan api.Event
	history []api.Message
	close   func() // ends the event stream
}

// openChat finds the group named name (or with that id) and opens it. Its
// errors are one line a person can act on.
func openChat(ctx context.Context, client *api.Client, name string) (*chatSession, error) {
	groups, err := client.Groups(ctx)
	if err != nil {
		return nil, explain(err)
	}
	g, err := findGroup(groups, name)
	if err != nil {
		return nil, groupError(err, name)
	}
	if g.Damaged != "" {
		return nil, fmt.Errorf("%q is damaged (%s): read its history with 'parley read %s'; to take part again, 'parley group forget %s', then ask a member to remove and re-invite you",
			name, clean(g.Damaged), quoteArg(name), quoteArg(name))
	}
	if g.Pending {
		return nil, fmt.Errorf("you are not in %q yet: a member lets you in once your nodes meet ('parley groups' shows it pending until then)", name)
	}
	sctx, cancel := context.WithCancel(ctx)
	events, err := client.Subscribe(sctx, g.ID)
	if err != nil {
		cancel()
		return nil, groupError(err, name)
	}
	history, err := readHistory(ctx, client, g.ID, 0, 0)
	if err != nil {
		cancel()
		return nil, groupError(err, name)
	}
	return &chatSession{client: client, group: g, events: events, history: history, close: cancel}, nil
}

// findGroup returns the group whose id is ref, else the one group named
// ref.
func findGroup(groups []api.Group, ref string) (api.Group, error) {
	var named []api.Group
	for _, g := range groups {
		if g.ID == ref {
			return g, nil
		}
		if g.Name == ref {
			named = append(named, g)
		}
	}
	switch len(named) {
	case 0:
		return api.Group{}, api.ErrNotFound
	case 1:
		return named[0], nil
	}
	return api.Group{}, api.ErrAmbiguous
}

// chatCallTimeout bounds each request the chat makes of the daemon, so
// that a stuck daemon shows as an error instead of a frozen chat.
const chatCallTimeout = 30 * time.Second

// A chatAction is what a line typed in the chat asks for.
type chatAction int

const (
	chatNothing chatAction = iota // an empty line
	chatText                      // send arg as a message
	chatFile                      // send the file at arg
	chatMembers                   // list the members
	chatHelp                      // list the commands
	chatQuit                      // leave the chat
)

// chatHelpText lists the chat's commands and keys, one per line.
var chatHelpText = []string{
	"Enter sends the line as a message; '//text' sends '/text'",
	"/file PATH   send the file at PATH",
	"/members     list the members with their fingerprints",
	"/help        this list",
	"/quit        leave the chat (also Ctrl-C or Esc)",
	"PgUp, PgDn   scroll the messages",
}

// parseChatLine tells what a line typed in the chat asks for.
func parseChatLine(line string) (chatAction, string, error) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return chatNothing, "", nil
	}
	if strings.HasPrefix(line, "//") {
		return chatText, line[1:], nil
	}
	if !strings.HasPrefix(line, "/") {
		if !utf8.ValidString(line) {
			return chatNothing, "", errors.New("the message is not valid UTF-8")
		}
		return chatText, line, nil
	}
	name, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/file":
		if arg == "" {
			return chatNothing, "", errors.New("which file? /file PATH")
		}
		return chatFile, arg, nil
	case "/members":
		return chatMembers, "", nil
	case "/help", "/?":
		return chatHelp, "", nil
	case "/quit", "/q", "/exit":
		return chatQuit, "", nil
	}
	return chatNothing, "", fmt.Errorf("no command %s; /help lists them ('//' sends a text that starts with '/')", clean(name))
}

// chatFileInfo checks the file a /file command names and returns its
// absolute path (the daemon opens it, from its own working directory)
// and size. A path in quotes, as terminals paste a dropped file, is
// unquoted; a leading ~/ is the home directory.
func chatFileInfo(path string) (string, int64, error) {
	if n := len(path); n >= 2 && (path[0] == '\'' || path[0] == '"') && path[n-1] == path[0] {
		path = path[1 : n-1]
	}
	if strings.HasPrefix(path, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, path[2:])
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", 0, err
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", 0, fmt.Errorf("no file %s", clean(path))
	case err != nil:
		return "", 0, fmt.Errorf("%s: %w", clean(path), errors.Unwrap(err))
	case fi.IsDir():
		return "", 0, fmt.Errorf("%s is a directory; send one file at a time", clean(path))
	case !fi.Mode().IsRegular():
		return "", 0, fmt.Errorf("%s is not a regular file", clean(path))
	}
	return abs, fi.Size(), nil
}

// chatProblem is an error of a request made during the chat, as the
// status line shows it; gone tells that the daemon is gone and removed
// that this node is no longer in the group.
func chatProblem(err error) (text string, gone, removed bool) {
	switch {
	case errors.Is(err, api.ErrNotMember):
		return "you are no longer in this group: you can read, not send", false, true
	case errors.Is(err, api.ErrClosed), errors.Is(err, api.ErrNotRunning):
		return lostDaemon, true, false
	case errors.Is(err, context.DeadlineExceeded):
		return "the daemon did not answer in time; is it overloaded? ('parley status' tells)", false, false
	}
	return explain(err).Error(), false, false
}

// lostDaemon is what the chat says when the daemon goes away.
const lostDaemon = "lost the daemon; is it still running? ('parley status' tells) /quit, then start the chat again"

// messageTime is when a message was sent, as its sender claims, else
// when it arrived.
func messageTime(m api.Message) time.Time {
	if m.SentAt.IsZero() {
		return m.ReceivedAt
	}
	return m.SentAt
}

// chatFileText describes a file message in the chat: name, size, and how
// far its transfer is, from the latest progress event p if any.
func chatFileText(f *api.FileInfo, p *api.Progress, own bool) string {
	s := fmt.Sprintf("[file %s, %s", clean(f.Name), size(f.Size))
	done, total := f.Received, f.Size
	if own && p == nil {
		done = total // a file of ours is all here; progress events say how far sending went
	}
	if p != nil {
		done, total = p.Done, p.Total
	}
	if done < total {
		pct := int(done * 100 / max(total, 1))
		if own {
			s += fmt.Sprintf(", sending %d%%", pct)
		} else {
			s += fmt.Sprintf(", %d%% received", pct)
		}
	}
	s += "]"
	if !own && f.Path != "" && done >= total {
		s += " " + clean(f.Path)
	}
	return s
}

// memberLines lists members for /members: name, online state, who added
// them, fingerprint.
func memberLines(members []api.Member) []string {
	var lines []string
	for _, mb := range members {
		name := clean(mb.Name)
		if mb.Self {
			name += " (you)"
		}
		line := fmt.Sprintf("%s, %s", name, onOff(mb.Online))
		if mb.AddedBy != "" {
			line += ", added by " + clean(mb.AddedBy)
		}
		if mb.Fingerprint != "" {
			line += ", fingerprint " + clean(mb.Fingerprint)
		}
		lines = append(lines, line)
	}
	return lines
}

// membershipLines describes a change of members.
func membershipLines(mb *api.Membership) []string {
	var lines []string
	for _, name := range mb.Added {
		lines = append(lines, fmt.Sprintf("%s joined (epoch %d)", clean(name), mb.Epoch))
	}
	// Who asked, where the event says (the member who commits a removal
	// is often not the one who asked for it); neutral words otherwise.
	for i, name := range mb.Removed {
		by := ""
		if i < len(mb.RemovedBy) {
			by = mb.RemovedBy[i]
		}
		switch {
		case by == name:
			lines = append(lines, fmt.Sprintf("%s left the group (epoch %d)", clean(name), mb.Epoch))
		case by != "":
			lines = append(lines, fmt.Sprintf("%s removed %s (epoch %d)", clean(by), clean(name), mb.Epoch))
		default:
			lines = append(lines, fmt.Sprintf("%s is no longer in the group (epoch %d)", clean(name), mb.Epoch))
		}
	}
	return lines
}
