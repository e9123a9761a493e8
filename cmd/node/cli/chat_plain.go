package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// The chat's line mode, for a pipe, a file or --plain: the history, then
// a line per event, and a message sent for each line of input.

// plainChat prints a chat line by line.
type plainChat struct {
	s           *chatSession
	out         io.Writer
	errOut      io.Writer
	now         func() time.Time
	senderWidth int
	// shown holds the messages printed, by id, to print a message again
	// when it becomes final and never twice otherwise.
	shown map[string]api.Message
}

// maxChatLine is the longest line of input the chat sends: a message is
// at most 64 KiB.
const maxChatLine = 64 << 10

func runPlainChat(ctx context.Context, s *chatSession, stdin io.Reader, stdout, stderr io.Writer) error {
	p := &plainChat{s: s, out: stdout, errOut: stderr, now: time.Now, senderWidth: 8, shown: map[string]api.Message{}}
	for _, m := range s.history {
		p.senderWidth = max(p.senderWidth, min(utf8.RuneCountInString(clean(m.Sender)), 16))
	}
	if s.group.Removed {
		p.problem("you are no longer in this group: you can read, not send")
	}
	for _, m := range s.history {
		p.message(m)
	}

	// The input is read in a goroutine of its own, which ends at the end
	// of the input or when the chat ends.
	lines := make(chan string)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 0, 4096), maxChatLine+1)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
		readErr <- sc.Err()
		close(lines)
	}()

	for {
		select {
		case <-ctx.Done():
			return nil // interrupted: the way to leave
		case ev, ok := <-s.events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("the daemon closed the connection; is it still running? ('parley status' tells)")
			}
			p.event(ev)
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					if errors.Is(err, bufio.ErrTooLong) {
						return fmt.Errorf("reading the input: a line over %d KiB (a message is at most 64 KiB)", maxChatLine>>10)
					}
					return fmt.Errorf("reading the input: %w", err)
				}
				return nil // the end of the input
			}
			if quit := p.line(ctx, line); quit {
				return nil
			}
		}
	}
}

// line acts on a line of input; it returns true to leave the chat.
func (p *plainChat) line(ctx context.Context, line string) bool {
	act, arg, err := parseChatLine(line)
	if err != nil {
		p.problem(err.Error())
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, chatCallTimeout)
	defer cancel()
	switch act {
	case chatText:
		if _, err := p.s.client.Send(ctx, p.s.group.ID, arg); err != nil {
			p.sendProblem(err)
		}
	case chatFile:
		path, _, err := chatFileInfo(arg)
		if err != nil {
			p.problem(err.Error())
			return false
		}
		if _, err := p.s.client.SendFile(ctx, p.s.group.ID, path); err != nil {
			p.sendProblem(err)
		}
	case chatMembers:
		members, err := p.s.client.Members(ctx, p.s.group.ID)
		if err != nil {
			p.sendProblem(err)
			return false
		}
		for _, l := range memberLines(members) {
			p.note(l)
		}
	case chatHelp:
		for _, l := range chatHelpText {
			p.note(l)
		}
	case chatQuit:
		return true
	}
	return false
}

// event prints what an event shows.
func (p *plainChat) event(ev api.Event) {
	if ev.Group != "" && ev.Group != p.s.group.ID {
		return
	}
	switch ev.Type {
	case api.EventMessage:
		if ev.Message != nil {
			p.message(*ev.Message)
		}
	case api.EventFinal:
		if ev.Message == nil {
			return
		}
		m, ok := p.shown[ev.Message.ID]
		if !ok || m.Final {
			return
		}
		m.Final = true
		p.message(m)
	case api.EventMembership:
		if ev.Membership != nil {
			for _, l := range membershipLines(ev.Membership) {
				p.note(l)
			}
		}
	case api.EventGroup:
		if g := ev.GroupInfo; g != nil && g.Removed && !p.s.group.Removed {
			p.s.group.Removed = true
			p.note("you are no longer in this group: you can read, not send")
		}
	case api.EventFile:
		f := ev.File
		if f == nil || f.Done < f.Total {
			return
		}
		if m, ok := p.shown[f.ID]; ok && m.Own {
			p.note(fmt.Sprintf("sent %s (%s)", clean(f.Name), size(f.Total)))
		} else if ok {
			p.note(fmt.Sprintf("received %s (%s)", clean(f.Name), size(f.Total)))
		}
	case api.EventNotice:
		p.note("! " + clean(ev.Text))
	case api.EventJoinRequest:
		if ev.JoinRequest != nil {
			p.note("! " + joinRequestLine(*ev.JoinRequest))
		}
	}
}

// message prints a message, unless it was printed as it is.
func (p *plainChat) message(m api.Message) {
	if old, ok := p.shown[m.ID]; ok && m.ID != "" && old.Final == m.Final {
		return
	}
	p.shown[m.ID] = m
	mark := "~"
	if m.Final {
		mark = "✓"
	}
	sender := clean(m.Sender)
	if pad := p.senderWidth - utf8.RuneCountInString(sender); pad > 0 {
		sender += strings.Repeat(" ", pad)
	}
	head := fmt.Sprintf("%s %s %s  ", shortTime(messageTime(m), p.now()), mark, sender)
	body := cleanText(m.Text)
	if m.File != nil {
		body = chatFileText(m.File, nil, m.Own)
	}
	indent := strings.Repeat(" ", utf8.RuneCountInString(head))
	fmt.Fprintf(p.out, "%s%s\n", head, strings.ReplaceAll(body, "\n", "\n"+indent))
}

// note prints a line about the group (a member joined, a notice).
func (p *plainChat) note(text string) {
	fmt.Fprintf(p.out, "-- %s\n", text)
}

// problem prints an error that does not end the chat.
func (p *plainChat) problem(text string) {
	fmt.Fprintf(p.errOut, "parley chat: %s\n", text)
}

func (p *plainChat) sendProblem(err error) {
	text, _, removed := chatProblem(err)
	if removed {
		p.s.group.Removed = true
	}
	p.problem(text)
}
