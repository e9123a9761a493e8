package cli

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// The full-screen chat's rendering:
//
//	 friends  epoch 4 · 3 members, 2 online                  ↓ 2 new
//	── Thursday, March 13 ──                        │ Members (3)
//	22:10 ✓ bob    see you tomorrow                 │ ● alice (you)
//	15:04 ✓ alice  hello                            │ ● bob
//	15:05 ~ bob    [file photo.jpg, 2.0 MiB, 40%    │ ○ carol
//	               received]                        │
//	-- carol joined (epoch 4)                       │
//	15:06 … alice  on my way                        │
//	! two commits on epoch 4; the fork choice will pick one
//	> message friends (Enter sends, /help lists commands)
//
// Everything from other people (names, texts, file names, notices) is
// cleaned of control characters and bidi overrides before it is drawn.

var (
	headerStyle      = lipgloss.NewStyle().Reverse(true).Bold(true)
	dimStyle         = lipgloss.NewStyle().Faint(true)
	boldStyle        = lipgloss.NewStyle().Bold(true)
	finalStyle       = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	provisionalStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	failedStyle      = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	noticeStyle      = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	onlineStyle      = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	// senderColors tell senders apart; a sender's color comes from its
	// fingerprint, so that a name taken by someone else looks different.
	senderColors = []lipgloss.Color{"4", "5", "6", "12", "13", "14"}
)

const (
	membersPaneWidth    = 24
	membersPaneMinWidth = 64 // a narrower terminal has no members pane; /members lists them
	maxSenderWidth      = 16
)

func (m *chatModel) View() string {
	if m.quitting || !m.ready {
		return ""
	}
	body := m.pane.View()
	if m.membersWidth() > 0 {
		body = lipgloss.JoinHorizontal(lipgloss.Top, body, m.membersView(m.pane.Height))
	}
	return strings.Join([]string{m.headerView(), body, m.statusView(), m.input.View()}, "\n")
}

func (m *chatModel) membersWidth() int {
	if m.width >= membersPaneMinWidth {
		return membersPaneWidth
	}
	return 0
}

// render lays the entries out in the message pane, which stays at the
// bottom if it was there, or if follow.
func (m *chatModel) render(follow bool) {
	if !m.ready {
		return
	}
	sw := 4
	for _, e := range m.entries {
		if e.state != entryNote {
			sw = max(sw, min(lipgloss.Width(clean(e.msg.Sender)), maxSenderWidth))
		}
	}
	m.senderWidth = sw
	key := renderKey{width: m.pane.Width, senderWidth: sw}
	atBottom := m.pane.AtBottom()

	var b strings.Builder
	if m.trimmed {
		b.WriteString(dimStyle.Render(fit("older messages: parley read "+quoteArg(m.group.Name), m.pane.Width)))
		b.WriteByte('\n')
	}
	today := m.now().Local()
	var prev time.Time
	for i := range m.entries {
		e := &m.entries[i]
		if t := messageTime(e.msg); e.state != entryNote && !t.IsZero() {
			t = t.Local()
			if !(prev.IsZero() && sameDay(t, today)) && !sameDay(t, prev) {
				b.WriteString(dimStyle.Render(fit(dayLine(t, today), m.pane.Width)))
				b.WriteByte('\n')
			}
			prev = t
		}
		if e.viewKey != key {
			e.view, e.viewKey = m.renderEntry(e, key), key
		}
		b.WriteString(e.view)
		b.WriteByte('\n')
	}
	m.pane.SetContent(strings.TrimSuffix(b.String(), "\n"))
	if follow || atBottom {
		m.pane.GotoBottom()
		m.unseen = 0
	}
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// dayLine separates the messages of a day from those before.
func dayLine(t, today time.Time) string {
	if t.Year() == today.Year() {
		return "── " + t.Format("Monday, January 2") + " ──"
	}
	return "── " + t.Format("Monday, January 2, 2006") + " ──"
}

// renderEntry draws an entry: time, mark, sender and text, the text
// wrapped under itself; or a note.
func (m *chatModel) renderEntry(e *chatEntry, k renderKey) string {
	if e.state == entryNote {
		return dimStyle.Render("-- " + strings.Join(wrap(e.note, k.width-3), "\n   "))
	}
	msg := e.msg
	at := "     "
	if t := messageTime(msg); !t.IsZero() {
		at = t.Local().Format("15:04")
	}
	var mark string
	var markStyle lipgloss.Style
	switch {
	case e.state == entrySending:
		mark, markStyle = "…", dimStyle
	case e.state == entryFailed:
		mark, markStyle = "✗", failedStyle
	case msg.Final:
		mark, markStyle = "✓", finalStyle
	default:
		mark, markStyle = "~", provisionalStyle
	}
	sender := fit(clean(msg.Sender), k.senderWidth)
	sender += strings.Repeat(" ", max(k.senderWidth-lipgloss.Width(sender), 0))
	senderStyle := lipgloss.NewStyle().Foreground(senderColor(msg.SenderFingerprint + msg.Sender))
	if msg.Own {
		senderStyle = boldStyle
	}
	headWidth := lipgloss.Width(at + " " + mark + " " + sender + "  ")

	body := cleanText(msg.Text)
	if msg.File != nil {
		var p *api.Progress
		if pr, ok := m.progress[msg.ID]; ok && msg.ID != "" {
			p = &pr
		}
		body = chatFileText(msg.File, p, msg.Own)
	}
	if e.state == entryFailed {
		body += " (not sent)"
	}
	lines := wrap(body, k.width-headWidth)
	head := dimStyle.Render(at) + " " + markStyle.Render(mark) + " " + senderStyle.Render(sender) + "  "
	return head + strings.Join(lines, "\n"+strings.Repeat(" ", headWidth))
}

// senderColor picks a color for a sender from its fingerprint.
func senderColor(fingerprint string) lipgloss.Color {
	h := fnv.New32a()
	h.Write([]byte(fingerprint))
	return senderColors[h.Sum32()%uint32(len(senderColors))]
}

// wrap wraps text (clean, with newlines) to width columns, at words
// where it can.
func wrap(text string, width int) []string {
	width = max(width, 10) // a terminal this narrow gets its lines cut instead
	lines := strings.Split(lipgloss.NewStyle().Width(width).Render(text), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return lines
}

// fit cuts s to width columns, ending it with "…" if it was cut.
func fit(s string, width int) string {
	if lipgloss.Width(s) <= width {
		return s
	}
	if width <= 0 {
		return ""
	}
	r := []rune(s)
	for len(r) > 0 && lipgloss.Width(string(r))+1 > width {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

func (m *chatModel) headerView() string {
	g := m.group
	left := fmt.Sprintf(" %s  epoch %d", clean(g.Name), g.Epoch)
	if g.FinalEpoch < g.Epoch && (g.FinalEpoch > 0 || g.Outbox > 0) {
		left += fmt.Sprintf(" (final %d)", g.FinalEpoch)
	}
	if m.members != nil {
		online := 0
		for _, mb := range m.members {
			if mb.Online {
				online++
			}
		}
		left += fmt.Sprintf(" · %s, %d online", countOf(len(m.members), "member"), online)
	} else {
		left += " · " + countOf(g.Members, "member")
	}
	if g.Forks > 0 {
		left += " · " + countOf(g.Forks, "fork")
	}
	if g.Rollbacks > 0 {
		left += " · " + countOf(g.Rollbacks, "rollback")
	}
	if g.Syncing {
		left += " · syncing"
	}
	switch {
	case m.gone:
		left += " · daemon gone"
	case m.removed:
		left += " · not a member"
	}
	right := ""
	if m.unseen > 0 {
		right = fmt.Sprintf("↓ %d new (PgDn) ", m.unseen)
	}
	if right != "" {
		left = fit(left, m.width-lipgloss.Width(right)-1)
	} else {
		left = fit(left, m.width)
	}
	gap := max(m.width-lipgloss.Width(left)-lipgloss.Width(right), 0)
	return headerStyle.Render(left + strings.Repeat(" ", gap) + right)
}

func (m *chatModel) statusView() string {
	switch {
	case m.status != "" && m.statusErr:
		return failedStyle.Render(fit("✗ "+m.status, m.width))
	case m.status != "":
		return noticeStyle.Render(fit("! "+m.status, m.width))
	}
	return dimStyle.Render(fit("Enter sends · /file PATH · /members · /help · PgUp/PgDn scroll · Esc quits", m.width))
}

// membersView draws the members pane: who is in the group, and online.
func (m *chatModel) membersView(height int) string {
	inner := membersPaneWidth - 2 // the border and the padding
	lines := []string{boldStyle.Render(fit(fmt.Sprintf("Members (%d)", len(m.members)), inner))}
	if m.members == nil {
		lines[0] = boldStyle.Render("Members")
		lines = append(lines, dimStyle.Render("…"))
	}
	for i, mb := range m.members {
		if len(lines) == height-1 && i < len(m.members)-1 {
			lines = append(lines, dimStyle.Render(fmt.Sprintf("+%d more (/members)", len(m.members)-i)))
			break
		}
		dot := dimStyle.Render("○")
		if mb.Online {
			dot = onlineStyle.Render("●")
		}
		name := clean(mb.Name)
		if mb.Self {
			name += " (you)"
		}
		lines = append(lines, dot+" "+fit(name, inner-2))
	}
	return lipgloss.NewStyle().
		Width(membersPaneWidth - 1).Height(height).MaxHeight(height).
		PaddingLeft(1).
		BorderStyle(lipgloss.NormalBorder()).BorderLeft(true).
		Render(strings.Join(lines, "\n"))
}

// countOf formats a count with its noun: "1 member", "3 members".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
