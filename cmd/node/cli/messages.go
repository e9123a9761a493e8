package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-p2p/parley/cmd/node/api"
)

const sendUsage = `Usage: parley send GROUP TEXT... [--json] [--data DIR]
       parley send GROUP --file PATH [--no-wait] [--json] [--data DIR]

Sends a text message to GROUP (its name or id); several TEXT arguments
are joined with spaces. Put '--' before a text that starts with '-'.
A TEXT of '-' alone reads the text from standard input, up to 64 KiB
(one trailing newline is dropped): some-command | parley send GROUP -

With --file, announces the file at PATH to the group (its name, size,
SHA-256 and a fresh key, encrypted under the group's keys); the members
fetch it over direct streams, sealed chunk by chunk under that key, from
this node or any member that has it. It shows the progress on stderr
until every chunk went out once. If the command is interrupted, or the
daemon restarts, the daemon goes on serving it.

  --file PATH  send the file at PATH
  --no-wait    with --file: return once the daemon has the file, without
               waiting for it to be sent
` + jsonFlag + commonFlags

// maxText is the daemon's limit on a text message.
const maxText = 64 << 10

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return send(ctx, args, os.Stdin, stdout, stderr)
}

// send is runSend with its input given, for the tests.
func send(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newCommand("send", sendUsage, true, stdout, stderr)
	file := c.fs.String("file", "", "")
	noWait := c.fs.Bool("no-wait", false, "")
	pos, err := c.parse(args, 1, -1, "GROUP TEXT")
	if err != nil {
		return err
	}
	group := pos[0]
	text := strings.Join(pos[1:], " ")
	if len(pos) == 2 && text == "-" && *file == "" {
		if text, err = readText(stdin); err != nil {
			return err
		}
	}
	switch {
	case *file != "" && text != "":
		return errors.New("give TEXT or --file PATH, not both")
	case *file == "" && *noWait:
		return errors.New("--no-wait goes with --file")
	case *file == "" && text == "":
		return errors.New("missing TEXT (usage: parley send GROUP TEXT, or parley send GROUP --file PATH)")
	case *file == "" && !utf8.ValidString(text):
		return errors.New("TEXT is not valid UTF-8")
	}
	client, err := c.dial(ctx)
	if err != nil {
		return explain(err)
	}
	defer client.Close()
	if *file != "" {
		return c.sendFile(ctx, client, group, *file, *noWait)
	}
	id, err := client.Send(ctx, group, text)
	if err != nil {
		return groupError(err, group)
	}
	if c.json {
		return c.printJSON(map[string]string{"id": id})
	}
	fmt.Fprintf(stdout, "sent to %s (id %s)\n", clean(group), shortID(id))
	return nil
}

// readText reads a message's text from r, up to maxText bytes, without
// its trailing newline.
func readText(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxText+3)) // "\r\n", and one byte more
	if err != nil {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	if n, ok := bytes.CutSuffix(b, []byte("\n")); ok && len(b) <= maxText+2 {
		b = bytes.TrimSuffix(n, []byte("\r"))
	}
	switch {
	case len(b) > maxText:
		return "", fmt.Errorf("standard input holds over %d KiB, and a message is at most %d KiB; send it as a file with --file PATH", maxText>>10, maxText>>10)
	case len(b) == 0:
		return "", errors.New("standard input is empty: nothing to send")
	}
	return string(b), nil
}

// sendFile sends a file and, unless noWait, follows its progress until
// it is all sent. It subscribes before sending so that no progress event
// is missed.
func (c *command) sendFile(ctx context.Context, client *api.Client, group, path string, noWait bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no file %s", path)
	case err != nil:
		return fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	case fi.IsDir():
		return fmt.Errorf("%s is a directory; send one file at a time (an archive of the directory, say)", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	}
	name := filepath.Base(abs)

	var events <-chan api.Event
	if !noWait {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		events, err = client.Subscribe(sctx, group)
		if err != nil {
			return groupError(err, group)
		}
	}
	id, err := client.SendFile(ctx, group, abs)
	if err != nil {
		return groupError(err, group)
	}
	if !noWait && fi.Size() > 0 {
		if err := c.waitForFile(ctx, events, id, name); err != nil {
			return err
		}
	}
	if c.json {
		return c.printJSON(map[string]string{"id": id})
	}
	if noWait {
		fmt.Fprintf(c.stdout, "sending %s (%s) to %s in the background (id %s); 'parley read %s' shows it\n",
			clean(name), size(fi.Size()), clean(group), shortID(id), quoteArg(group))
		return nil
	}
	fmt.Fprintf(c.stdout, "sent %s (%s) to %s (id %s)\n", clean(name), size(fi.Size()), clean(group), shortID(id))
	return nil
}

// waitForFile draws the progress of file id from events until it is all
// sent.
func (c *command) waitForFile(ctx context.Context, events <-chan api.Event, id, name string) error {
	bar := newProgressBar(c.stderr, name)
	defer bar.end()
	for {
		var ev api.Event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted; the daemon goes on sending %s (id %s)", clean(name), shortID(id))
		}
		if !ok {
			return fmt.Errorf("lost the daemon while sending %s; it goes on sending it when it runs again (id %s)", clean(name), shortID(id))
		}
		if ev.Type != api.EventFile || ev.File == nil || ev.File.ID != id {
			continue
		}
		bar.update(ev.File.Done, ev.File.Total)
		if ev.File.Done >= ev.File.Total {
			return nil
		}
	}
}

const readUsage = `Usage: parley read GROUP [--follow] [--after N] [--limit N] [--order sent|arrival] [--json] [--data DIR]

Shows the messages of GROUP (its name or id), oldest first: position,
mark, time, sender, text. The mark is '✓' for a final message and '~'
for a provisional one, whose epoch may still be rolled back (it would then
be re-sent on the winning branch, never lost or shown twice).

The position is the order in which this node received the messages. A
message that reached it late (it was offline, or cut off) has a higher
position than messages sent after it; by default read shows the history
in the order the messages were sent (by the time each sender gives, which
only ever increases for one sender: each sender's messages are in the
order it sent them), and --order arrival shows it by position.

  --follow     after the history, show new messages as they arrive, until
               interrupted; with --json, one JSON object per line, and a
               message again when it becomes final
  --after N    start after position N (the first column)
  --limit N    show at most N messages of the history (by position)
  --order O    sent (the default) or arrival; --follow shows new messages
               as they arrive
` + jsonFlag + commonFlags

// readPage is how many messages read asks for at a time.
const readPage = 500

func runRead(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("read", readUsage, true, stdout, stderr)
	follow := c.fs.Bool("follow", false, "")
	after := c.fs.Uint64("after", 0, "")
	limit := c.fs.Int("limit", 0, "")
	order := c.fs.String("order", "sent", "")
	pos, err := c.parse(args, 1, 1, "GROUP")
	if err != nil {
		return err
	}
	if *limit < 0 {
		return fmt.Errorf("--limit %d: want 0 (all) or more", *limit)
	}
	if *order != "sent" && *order != "arrival" {
		return fmt.Errorf("--order %q: want sent or arrival", *order)
	}
	group := pos[0]
	client, err := c.dial(ctx)
	if err != nil {
		return explain(err)
	}
	defer client.Close()

	// Subscribe before reading the history, so nothing falls between.
	var events <-chan api.Event
	if *follow {
		events, err = client.Subscribe(ctx, group)
		if err != nil {
			return groupError(err, group)
		}
	}
	p := &messagePrinter{c: c, senderWidth: 8, provisional: map[uint64]api.Message{}}
	history, err := readHistory(ctx, client, group, *after, *limit)
	if err != nil {
		return groupError(err, group)
	}
	last := *after
	for _, m := range history {
		last = max(last, m.Seq)
	}
	if *order == "sent" {
		sortBySent(history)
	}
	if !*follow {
		if c.json {
			return c.printJSON(history)
		}
		if len(history) == 0 && *after == 0 {
			fmt.Fprintf(stdout, "no messages in %s yet\n", clean(group))
			return nil
		}
		return p.printAll(history)
	}

	if err := p.printAll(history); err != nil {
		return err
	}
	for {
		var ev api.Event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			return nil // interrupted: the way to stop following
		}
		if !ok {
			return errors.New("the daemon closed the connection; is it still running? ('parley status' tells)")
		}
		switch {
		case ev.Type == api.EventMessage && ev.Message != nil && ev.Message.Seq > last:
			last = ev.Message.Seq
			if err := p.print(*ev.Message); err != nil {
				return err
			}
		case ev.Type == api.EventFinal && ev.Message != nil:
			if err := p.final(ev.Message.Seq); err != nil {
				return err
			}
		}
	}
}

// sortBySent puts msgs in the order they were sent: by the time each
// sender gives (which increases with every message of one sender), then
// by position.
func sortBySent(msgs []api.Message) {
	slices.SortStableFunc(msgs, func(a, b api.Message) int {
		if c := a.SentAt.Compare(b.SentAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
}

// readHistory reads the messages after after, at most limit (0: all),
// a page at a time.
func readHistory(ctx context.Context, client *api.Client, group string, after uint64, limit int) ([]api.Message, error) {
	if limit > 0 {
		msgs, err := client.Read(ctx, group, after, limit)
		if msgs == nil {
			msgs = []api.Message{}
		}
		return msgs, err
	}
	all := []api.Message{}
	for {
		msgs, err := client.Read(ctx, group, after, readPage)
		if err != nil {
			return nil, err
		}
		all = append(all, msgs...)
		if len(msgs) < readPage {
			return all, nil
		}
		after = msgs[len(msgs)-1].Seq
	}
}

// messagePrinter prints messages as text, or as JSON lines when
// following with --json.
type messagePrinter struct {
	c           *command
	senderWidth int
	// provisional holds the messages printed as JSON lines that are not
	// final yet, to print again when they become final.
	provisional map[uint64]api.Message
}

func (p *messagePrinter) printAll(msgs []api.Message) error {
	for _, m := range msgs {
		p.senderWidth = max(p.senderWidth, min(utf8.RuneCountInString(clean(m.Sender)), 16))
	}
	for _, m := range msgs {
		if err := p.print(m); err != nil {
			return err
		}
	}
	return nil
}

func (p *messagePrinter) print(m api.Message) error {
	if p.c.json {
		if !m.Final {
			p.provisional[m.Seq] = m
		}
		return p.jsonLine(m)
	}
	mark := "~"
	if m.Final {
		mark = "✓"
	}
	at := m.SentAt
	if at.IsZero() {
		at = m.ReceivedAt
	}
	sender := clean(m.Sender)
	if pad := p.senderWidth - utf8.RuneCountInString(sender); pad > 0 {
		sender += strings.Repeat(" ", pad)
	}
	head := fmt.Sprintf("%6d %s %s  %s  ", m.Seq, mark, shortTime(at, time.Now()), sender)
	body := cleanText(m.Text)
	if m.File != nil {
		body = fileLine(m.File)
	}
	indent := strings.Repeat(" ", utf8.RuneCountInString(head))
	_, err := fmt.Fprintf(p.c.stdout, "%s%s\n", head, strings.ReplaceAll(body, "\n", "\n"+indent))
	return err
}

// final prints a provisional message again, now final, in JSON mode; in
// text mode the lines already printed stay as they are.
func (p *messagePrinter) final(seq uint64) error {
	m, ok := p.provisional[seq]
	if !ok || !p.c.json {
		return nil
	}
	delete(p.provisional, seq)
	m.Final = true
	return p.jsonLine(m)
}

func (p *messagePrinter) jsonLine(m api.Message) error {
	line, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(p.c.stdout, "%s\n", line)
	return err
}

// fileLine describes a file message.
func fileLine(f *api.FileInfo) string {
	s := fmt.Sprintf("[file %s, %s", clean(f.Name), size(f.Size))
	if f.Received < f.Size {
		pct := 0
		if f.Size > 0 {
			pct = int(f.Received * 100 / f.Size)
		}
		s += fmt.Sprintf(", %d%% received", pct)
	}
	s += "]"
	if f.Path != "" && f.Received >= f.Size {
		s += " " + clean(f.Path)
	}
	return s
}
