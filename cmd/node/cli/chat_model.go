package cli

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// The full-screen chat's model: its state, and how the messages it gets
// (keys, the daemon's events, the answers to its requests) change it.
// Update does no I/O of its own: each request to the daemon is a tea.Cmd,
// which the program runs in a goroutine (or a test runs in line) and
// whose answer comes back as a message. Rendering is in chat_view.go.

// Messages of the chat's own.
type (
	// eventMsg is an event from the daemon's stream.
	eventMsg api.Event
	// streamEndMsg says the event stream ended.
	streamEndMsg struct{}
	// sentMsg answers the send of outgoing local.
	sentMsg struct {
		local int
		id    string
		err   error
	}
	// refreshMsg answers a refresh: the members, and the group's status
	// (found false if the daemon did not list the group).
	refreshMsg struct {
		members []api.Member
		status  api.GroupStatus
		found   bool
		err     error
	}
	// tickMsg asks for the periodic refresh.
	tickMsg struct{}
)

// chatRefresh is how often the chat asks for the members (their online
// state changes without an event) and the group's status.
const chatRefresh = 5 * time.Second

// chatKeep is how many lines of history the chat keeps; older ones are
// for 'parley read'.
const chatKeep = 5000

// entryState is where an entry of the message pane stands.
type entryState int

const (
	entryDelivered entryState = iota // a message in the history; its Final tells provisional from final
	entrySending                     // a message of ours the daemon has not taken yet
	entryFailed                      // a message of ours the daemon refused
	entryNote                        // a line about the group, not a message
)

// chatEntry is one entry of the message pane.
type chatEntry struct {
	state entryState
	msg   api.Message // ID empty while sending
	note  string      // for entryNote, clean
	local int         // the number of our send while it is in flight, else 0

	// view caches the entry rendered with viewKey.
	view    string
	viewKey renderKey
}

// renderKey is what an entry's rendering depends on besides the entry.
type renderKey struct{ width, senderWidth int }

// outgoing is a message or a file waiting to be sent.
type outgoing struct {
	local int
	text  string
	path  string // absolute, for a file
}

// chatModel is the full-screen chat.
type chatModel struct {
	ctx    context.Context // the requests' context
	client api.Backend
	group  api.GroupStatus
	// events is the daemon's event stream; nil if the caller feeds the
	// events as eventMsg (the tests).
	events <-chan api.Event
	// refreshEvery is the period of the refresh; 0 for none (the tests).
	refreshEvery time.Duration
	now          func() time.Time

	entries  []chatEntry
	byID     map[string]int // message id → index in entries
	trimmed  bool           // older entries were dropped
	progress map[string]api.Progress
	members  []api.Member
	self     string // our name, once the members are known

	outbox    []outgoing // in order; the first is in flight if sending
	sending   bool
	nextLocal int

	status    string // the latest notice or problem, clean
	statusErr bool   // status is a problem
	gone      bool   // the daemon went away
	removed   bool   // we are no longer in the group

	width       int
	ready       bool // the terminal's size is known
	senderWidth int
	unseen      int // messages that arrived below the view while scrolled up
	pane        viewport.Model
	input       textinput.Model
	quitting    bool
}

// newChatModel returns the chat of an opened group.
func newChatModel(ctx context.Context, s *chatSession) *chatModel {
	m := &chatModel{
		ctx: ctx, client: s.client, group: api.GroupStatus{Group: s.group},
		events: s.events, refreshEvery: chatRefresh, now: time.Now,
		byID: map[string]int{}, progress: map[string]api.Progress{},
		removed: s.group.Removed,
		pane:    viewport.New(0, 0),
	}
	m.input = textinput.New()
	m.input.Prompt = "> "
	m.input.Placeholder = "message " + clean(s.group.Name) + " (Enter sends, /help lists commands)"
	m.input.CharLimit = maxChatLine
	m.input.Cursor.SetMode(cursor.CursorStatic)
	m.input.Focus()
	history := s.history
	if len(history) > chatKeep {
		history = history[len(history)-chatKeep:]
		m.trimmed = true
	}
	for _, msg := range history {
		m.entries = append(m.entries, chatEntry{msg: msg})
	}
	m.reindex()
	return m
}

func (m *chatModel) Init() tea.Cmd {
	return tea.Batch(m.nextEvent(), m.refresh(), m.tick())
}

func (m *chatModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case tea.KeyMsg:
		return m, m.key(msg)
	case eventMsg:
		cmd := m.event(api.Event(msg))
		return m, tea.Batch(cmd, m.nextEvent())
	case streamEndMsg:
		m.gone = true
		m.setStatus(lostDaemon, true)
		return m, nil
	case sentMsg:
		return m, m.sent(msg)
	case refreshMsg:
		m.refreshed(msg)
		return m, nil
	case tickMsg:
		return m, tea.Batch(m.refresh(), m.tick())
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

// nextEvent waits for the next event of the stream.
func (m *chatModel) nextEvent() tea.Cmd {
	events := m.events
	if events == nil {
		return nil
	}
	return func() tea.Msg {
		ev, ok := <-events
		if !ok {
			return streamEndMsg{}
		}
		return eventMsg(ev)
	}
}

// tick asks for the next periodic refresh.
func (m *chatModel) tick() tea.Cmd {
	if m.refreshEvery <= 0 {
		return nil
	}
	return tea.Tick(m.refreshEvery, func(time.Time) tea.Msg { return tickMsg{} })
}

// refresh asks for the members and the group's status.
func (m *chatModel) refresh() tea.Cmd {
	ctx, client, group := m.ctx, m.client, m.group.ID
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, chatCallTimeout)
		defer cancel()
		members, err := client.Members(ctx, group)
		if err != nil {
			return refreshMsg{err: err}
		}
		st, err := client.Status(ctx)
		if err != nil {
			return refreshMsg{err: err}
		}
		for _, gs := range st.Groups {
			if gs.ID == group {
				return refreshMsg{members: members, status: gs, found: true}
			}
		}
		return refreshMsg{members: members}
	}
}

func (m *chatModel) refreshed(r refreshMsg) {
	if r.err != nil {
		m.problem(r.err)
		return
	}
	m.members = r.members
	for _, mb := range r.members {
		if mb.Self {
			m.self = mb.Name
		}
	}
	if r.found {
		m.group = r.status
		m.removed = r.status.Removed
	}
}

func (m *chatModel) resize(width, height int) {
	follow := !m.ready || m.pane.AtBottom()
	m.width = width
	m.pane.Width = max(width-m.membersWidth(), 1)
	m.pane.Height = max(height-3, 1) // the header, the status line, the input
	m.input.Width = max(width-len(m.input.Prompt)-1, 1)
	m.ready = true
	m.render(follow)
}

func (m *chatModel) key(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyCtrlC, tea.KeyEsc:
		m.quitting = true
		return tea.Quit
	case tea.KeyEnter:
		line := m.input.Value()
		m.input.Reset()
		return m.submit(line)
	case tea.KeyPgUp:
		m.pane.PageUp()
		return nil
	case tea.KeyPgDown:
		m.pane.PageDown()
		if m.pane.AtBottom() {
			m.unseen = 0
		}
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return cmd
}

// submit acts on a line typed in the input.
func (m *chatModel) submit(line string) tea.Cmd {
	if m.statusErr && !m.gone {
		m.setStatus("", false)
	}
	act, arg, err := parseChatLine(line)
	if err != nil {
		m.setStatus(err.Error(), true)
		m.input.SetValue(line) // to fix it
		return nil
	}
	switch act {
	case chatText, chatFile:
		return m.send(act, arg)
	case chatMembers:
		m.addNote(strings.Join(append([]string{"members:"}, memberLines(m.members)...), "\n"))
		m.render(true)
		return m.refresh()
	case chatHelp:
		m.addNote(strings.Join(chatHelpText, "\n"))
		m.render(true)
	case chatQuit:
		m.quitting = true
		return tea.Quit
	}
	return nil
}

// send queues a message or a file, shows it as being sent, and sends it
// after those queued before it.
func (m *chatModel) send(act chatAction, arg string) tea.Cmd {
	m.nextLocal++
	o := outgoing{local: m.nextLocal}
	e := chatEntry{state: entrySending, local: o.local, msg: api.Message{Sender: m.selfName(), Own: true, SentAt: m.now()}}
	if act == chatFile {
		path, n, err := chatFileInfo(arg)
		if err != nil {
			m.setStatus(err.Error(), true)
			return nil
		}
		o.path = path
		e.msg.File = &api.FileInfo{Name: filepath.Base(path), Size: n}
	} else {
		o.text = arg
		e.msg.Text = arg
	}
	m.outbox = append(m.outbox, o)
	m.appendEntry(e)
	m.render(true)
	return m.flush()
}

// flush sends the first queued message, unless one is in flight.
func (m *chatModel) flush() tea.Cmd {
	if m.sending || len(m.outbox) == 0 {
		return nil
	}
	m.sending = true
	o := m.outbox[0]
	ctx, client, group := m.ctx, m.client, m.group.ID
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, chatCallTimeout)
		defer cancel()
		var id string
		var err error
		if o.path != "" {
			id, err = client.SendFile(ctx, group, o.path)
		} else {
			id, err = client.Send(ctx, group, o.text)
		}
		return sentMsg{local: o.local, id: id, err: err}
	}
}

// sent takes the daemon's answer to a send: the entry gets its id (the
// message event may have come first, and taken the entry already), or is
// marked as not sent.
func (m *chatModel) sent(r sentMsg) tea.Cmd {
	m.sending = false
	if len(m.outbox) > 0 && m.outbox[0].local == r.local {
		m.outbox = m.outbox[1:]
	}
	i := m.localEntry(r.local)
	switch {
	case r.err != nil:
		if i >= 0 {
			m.entries[i].state = entryFailed
			m.entries[i].local = 0
			m.entries[i].viewKey = renderKey{}
		}
		m.problem(r.err)
	case i < 0:
		// trimmed away while in flight: nothing to show
	case m.entries[i].msg.ID == "":
		if _, ok := m.byID[r.id]; ok {
			m.removeEntry(i) // the message event came first, as an entry of its own
			break
		}
		e := &m.entries[i]
		e.msg.ID, e.state, e.local, e.viewKey = r.id, entryDelivered, 0, renderKey{}
		m.byID[r.id] = i
	default:
		m.entries[i].local = 0
	}
	m.render(false)
	return m.flush()
}

// event acts on an event of the daemon.
func (m *chatModel) event(ev api.Event) tea.Cmd {
	if ev.Group != "" && ev.Group != m.group.ID {
		return nil
	}
	switch ev.Type {
	case api.EventMessage:
		if ev.Message != nil {
			m.upsert(*ev.Message)
		}
	case api.EventFinal:
		if ev.Message != nil {
			m.final(ev.Message.ID, ev.Message.Seq)
		}
	case api.EventMembership:
		mb := ev.Membership
		if mb == nil {
			return nil
		}
		m.group.Epoch = max(m.group.Epoch, mb.Epoch)
		for _, l := range membershipLines(mb) {
			m.addNote(l)
		}
		m.render(false)
		return m.refresh()
	case api.EventGroup:
		if g := ev.GroupInfo; g != nil {
			m.group.Group = *g
			if g.Removed && !m.removed {
				m.removed = true
				m.setStatus("you are no longer in this group: you can read, not send", true)
			}
			m.removed = g.Removed
		}
	case api.EventFile:
		if p := ev.File; p != nil {
			m.progress[p.ID] = *p
			if i, ok := m.byID[p.ID]; ok {
				m.entries[i].viewKey = renderKey{}
				m.render(false)
			}
		}
	case api.EventNotice:
		text := clean(ev.Text)
		m.addNote("! " + text)
		m.setStatus(text, false)
		m.render(false)
		return m.refresh() // a removal, a rollback: the status tells
	case api.EventJoinRequest:
		if ev.JoinRequest != nil {
			line := joinRequestLine(*ev.JoinRequest)
			m.addNote("! " + line)
			m.setStatus(line, false)
			m.render(false)
		}
	}
	return nil
}

// upsert shows a message: a new one at the end, a known one (by id) in
// its place. Our message whose send is in flight takes the entry that
// shows it being sent.
func (m *chatModel) upsert(msg api.Message) {
	if i, ok := m.byID[msg.ID]; ok && msg.ID != "" {
		e := &m.entries[i]
		e.msg, e.state, e.viewKey = msg, entryDelivered, renderKey{}
		m.render(false)
		return
	}
	if msg.Own && m.sending && len(m.outbox) > 0 {
		if i := m.localEntry(m.outbox[0].local); i >= 0 && m.entries[i].msg.ID == "" && sameContent(m.entries[i].msg, msg) {
			e := &m.entries[i]
			e.msg, e.state, e.viewKey = msg, entryDelivered, renderKey{}
			if msg.ID != "" {
				m.byID[msg.ID] = i
			}
			m.render(false)
			return
		}
	}
	if m.ready && !m.pane.AtBottom() {
		m.unseen++
	}
	m.appendEntry(chatEntry{msg: msg})
	m.render(false)
}

// sameContent tells whether a message shows what a send of ours sent.
func sameContent(sending, got api.Message) bool {
	if sending.File != nil || got.File != nil {
		return sending.File != nil && got.File != nil && sending.File.Name == got.File.Name
	}
	return sending.Text == got.Text
}

// final marks a message final; the daemon names it by id (the fake by
// position too).
func (m *chatModel) final(id string, seq uint64) {
	i, ok := m.byID[id]
	if !ok && id == "" && seq != 0 {
		for j := range m.entries {
			if e := &m.entries[j]; e.state == entryDelivered && e.msg.Seq == seq {
				i, ok = j, true
				break
			}
		}
	}
	if !ok || m.entries[i].msg.Final {
		return
	}
	e := &m.entries[i]
	e.msg.Final, e.viewKey = true, renderKey{}
	m.render(false)
}

// problem shows the error of a request in the status line.
func (m *chatModel) problem(err error) {
	text, gone, removed := chatProblem(err)
	m.gone = m.gone || gone
	m.removed = m.removed || removed
	m.setStatus(text, true)
}

func (m *chatModel) setStatus(text string, isErr bool) {
	if m.gone && text != lostDaemon {
		return // nothing else matters until the chat is restarted
	}
	m.status, m.statusErr = text, isErr
}

func (m *chatModel) addNote(text string) {
	m.appendEntry(chatEntry{state: entryNote, note: text})
}

// appendEntry adds an entry at the end, dropping the oldest ones when
// there are too many.
func (m *chatModel) appendEntry(e chatEntry) {
	m.entries = append(m.entries, e)
	if e.msg.ID != "" && e.state != entryNote {
		m.byID[e.msg.ID] = len(m.entries) - 1
	}
	if len(m.entries) > chatKeep+chatKeep/10 {
		m.entries = append([]chatEntry(nil), m.entries[len(m.entries)-chatKeep:]...)
		m.trimmed = true
		m.reindex()
	}
}

func (m *chatModel) removeEntry(i int) {
	m.entries = append(m.entries[:i], m.entries[i+1:]...)
	m.reindex()
}

func (m *chatModel) reindex() {
	clear(m.byID)
	for i, e := range m.entries {
		if e.msg.ID != "" && e.state != entryNote {
			m.byID[e.msg.ID] = i
		}
	}
}

// localEntry returns the index of the entry of our send local, or -1.
func (m *chatModel) localEntry(local int) int {
	for i := len(m.entries) - 1; i >= 0; i-- {
		if m.entries[i].local == local {
			return i
		}
	}
	return -1
}

// selfName is our name as the members list gives it.
func (m *chatModel) selfName() string {
	if m.self != "" {
		return m.self
	}
	return "you"
}
