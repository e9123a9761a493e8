// Package apitest provides an in-memory api.Backend for the tests of the
// API's clients: the api package itself, the CLI and anything else that
// drives a node through the local API. It is never part of the daemon.
//
// Codes are plain strings: a contact code is "pc1-NAME" (ContactCode
// gives "pc1-alice"), an invite code "pi1-GROUP"; anything else is an
// ErrBadCode.
package apitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// Code prefixes.
const (
	ContactPrefix = "pc1-"
	InvitePrefix  = "pi1-"
)

// FileChunk is the size of the steps in which SendFile reports progress.
const FileChunk = 1 << 20

// Backend is an in-memory node named alice. It is safe for concurrent
// use.
type Backend struct {
	// Fail, if set, is called at the start of every method with the
	// method's wire name (api.MethodSend, ...); an error it returns is
	// returned instead of doing anything.
	Fail func(method string) error

	mu       sync.Mutex
	self     api.Identity
	contacts []api.Contact
	requests []api.JoinRequest
	invite   api.InviteSettings // of the last InviteCode
	groups   []*group
	subs     map[*sub]struct{}
	next     uint64
	now      time.Time
}

type group struct {
	api.Group
	members  []api.Member
	messages []api.Message
	waiting  []api.Change
}

type sub struct {
	ctx    context.Context
	group  string // hex id, "" for all
	mu     sync.Mutex
	closed bool
	ch     chan api.Event
}

// New returns an empty node: no contacts, no groups.
func New() *Backend {
	return &Backend{
		self: api.Identity{
			Name:        "alice",
			PeerID:      peerID("alice"),
			Addrs:       []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"},
			Fingerprint: fingerprint("alice"),
		},
		subs: make(map[*sub]struct{}),
		now:  time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC),
	}
}

// Start serves b on a unix socket at socketPath for the rest of the test.
func Start(t testing.TB, b api.Backend, socketPath string) *api.Server {
	t.Helper()
	s := api.NewServer(b, nil)
	if err := s.ListenUnix(socketPath); err != nil {
		t.Fatalf("serving the fake backend: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the server: %v", err)
		}
	})
	return s
}

func peerID(name string) string {
	h := sha256.Sum256([]byte("peer " + name))
	return "12D3KooW" + hex.EncodeToString(h[:])[:44]
}

func fingerprint(name string) string {
	h := sha256.Sum256([]byte("fingerprint " + name))
	var groups []string
	for i := 0; i < 12; i++ {
		n := (uint32(h[2*i])<<8 | uint32(h[2*i+1])) % 100000
		groups = append(groups, fmt.Sprintf("%05d", n))
	}
	return strings.Join(groups, " ")
}

// id returns a new hex id. Call with b.mu held.
func (b *Backend) id(kind string) string {
	b.next++
	h := sha256.Sum256(fmt.Appendf(nil, "%s %d", kind, b.next))
	return hex.EncodeToString(h[:16])
}

// tick returns the fake clock's next reading. Call with b.mu held.
func (b *Backend) tick() time.Time {
	b.now = b.now.Add(time.Minute)
	return b.now
}

func (b *Backend) fail(method string) error {
	if b.Fail != nil {
		return b.Fail(method)
	}
	return nil
}

func (b *Backend) Identity(ctx context.Context) (api.Identity, error) {
	if err := b.fail(api.MethodIdentity); err != nil {
		return api.Identity{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.self
	id.Addrs = append([]string(nil), id.Addrs...)
	return id, nil
}

func (b *Backend) ContactCode(ctx context.Context) (string, error) {
	if err := b.fail(api.MethodContactCode); err != nil {
		return "", err
	}
	return ContactPrefix + b.self.Name, nil
}

func (b *Backend) AddContact(ctx context.Context, code, name string) (api.Contact, error) {
	if err := b.fail(api.MethodAddContact); err != nil {
		return api.Contact{}, err
	}
	who, ok := strings.CutPrefix(code, ContactPrefix)
	if !ok || who == "" {
		return api.Contact{}, fmt.Errorf("contact code %q does not decode: %w", abbrev(code), api.ErrBadCode)
	}
	if name == "" {
		name = who
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.contacts {
		if c.Name == name {
			return api.Contact{}, fmt.Errorf("a contact named %q: %w", name, api.ErrExists)
		}
	}
	c := api.Contact{Name: name, PeerID: peerID(who), Fingerprint: fingerprint(who),
		Addrs: []string{"/ip4/127.0.0.1/tcp/4002"}, Online: len(b.contacts)%2 == 0}
	b.contacts = append(b.contacts, c)
	return c, nil
}

func (b *Backend) Contacts(ctx context.Context) ([]api.Contact, error) {
	if err := b.fail(api.MethodContacts); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.Contact(nil), b.contacts...), nil
}

// suiteNames are the names of the suites the fake's groups use most (the
// package imports no MLS).
var suiteNames = map[uint16]string{
	0x0001: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
	0x0054: "MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519",
}

// CreateGroup makes a group in suite 1, or in the suite an option names
// by its number (decimal, or hexadecimal with 0x); any other suite is
// ErrInvalid. The fake knows no suite names.
func (b *Backend) CreateGroup(ctx context.Context, name string, opts ...api.GroupOption) (api.Group, error) {
	if err := b.fail(api.MethodCreateGroup); err != nil {
		return api.Group{}, err
	}
	cs := uint64(1)
	if s := api.NewGroupSettings(opts...).Suite; s != "" {
		var err error
		if cs, err = strconv.ParseUint(s, 0, 16); err != nil {
			return api.Group{}, fmt.Errorf("%w: unknown cipher suite %q", api.ErrInvalid, s)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, g := range b.groups {
		if g.Name == name {
			return api.Group{}, fmt.Errorf("a group named %q: %w", name, api.ErrExists)
		}
	}
	g := &group{Group: api.Group{ID: b.id("group"), Name: name, Members: 1, Suite: uint16(cs), SuiteName: suiteNames[uint16(cs)]}}
	g.members = []api.Member{{Name: b.self.Name, PeerID: b.self.PeerID, Fingerprint: b.self.Fingerprint, Online: true, Self: true}}
	b.groups = append(b.groups, g)
	return g.Group, nil
}

func (b *Backend) Groups(ctx context.Context) ([]api.Group, error) {
	if err := b.fail(api.MethodGroups); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var list []api.Group
	for _, g := range b.groups {
		list = append(list, g.Group)
	}
	return list, nil
}

// group finds a group by name or hex id. Call with b.mu held.
func (b *Backend) group(name string) (*group, error) {
	var found []*group
	for _, g := range b.groups {
		if g.ID == name {
			return g, nil
		}
		if g.Name == name {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no group named %q: %w", name, api.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d groups are named %q: %w", len(found), name, api.ErrAmbiguous)
}

// activeGroup is group for the methods that need the node to be a
// member. Call with b.mu held.
func (b *Backend) activeGroup(name string) (*group, error) {
	g, err := b.group(name)
	if err != nil {
		return nil, err
	}
	if err := g.damaged(); err != nil {
		return nil, err
	}
	if g.Pending || g.Removed {
		return nil, fmt.Errorf("group %q: %w", g.Name, api.ErrNotMember)
	}
	return g, nil
}

// damaged returns the error of the methods that need a damaged group's
// state, worded as the node words it, or nil.
func (g *group) damaged() error {
	if g.Damaged == "" {
		return nil
	}
	return fmt.Errorf("%w: %q cannot be used (%s); its history stays readable with 'parley read'; to take part again run 'parley group forget %s' and ask a member to remove and re-invite you",
		api.ErrDamaged, g.Name, g.Damaged, g.Name)
}

// Damage marks a group damaged for the given reason, as a node does when
// it cannot read the group's saved state: it stays listed, its history
// readable, and the methods that need membership return api.ErrDamaged.
func (b *Backend) Damage(group, reason string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, err := b.group(group)
	if err != nil {
		return err
	}
	g.Damaged = reason
	g.Epoch, g.Members = 0, 0
	return nil
}

// Wait sets the membership changes a group's status shows waiting to be
// committed, as a node's does for the invites and removals it asked for
// that no epoch shows yet.
func (b *Backend) Wait(group string, changes ...api.Change) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, err := b.group(group)
	if err != nil {
		return err
	}
	g.waiting = changes
	return nil
}

func (b *Backend) Members(ctx context.Context, group string) ([]api.Member, error) {
	if err := b.fail(api.MethodMembers); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g, err := b.group(group)
	if err != nil {
		return nil, err
	}
	if err := g.damaged(); err != nil {
		return nil, err
	}
	return append([]api.Member(nil), g.members...), nil
}

func (b *Backend) RemoveContact(ctx context.Context, contact string) error {
	if err := b.fail(api.MethodRemoveContact); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i, err := b.contactIndex(contact)
	if err != nil {
		return err
	}
	b.contacts = append(b.contacts[:i], b.contacts[i+1:]...)
	return nil
}

func (b *Backend) RenameContact(ctx context.Context, contact, name string) (api.Contact, error) {
	if err := b.fail(api.MethodRenameContact); err != nil {
		return api.Contact{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i, err := b.contactIndex(contact)
	if err != nil {
		return api.Contact{}, err
	}
	for j, c := range b.contacts {
		if j != i && c.Name == name {
			return api.Contact{}, fmt.Errorf("a contact named %q: %w", name, api.ErrExists)
		}
	}
	b.contacts[i].Name = name
	return b.contacts[i], nil
}

// contactIndex finds a contact by name, peer ID or fingerprint. Called
// with b.mu held.
func (b *Backend) contactIndex(ref string) (int, error) {
	for i, c := range b.contacts {
		if c.Name == ref || c.PeerID == ref || c.Fingerprint == ref {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no contact %q: %w", ref, api.ErrNotFound)
}

func (b *Backend) Invite(ctx context.Context, group, contact string) error {
	if err := b.fail(api.MethodInvite); err != nil {
		return err
	}
	b.mu.Lock()
	g, err := b.activeGroup(group)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	var c *api.Contact
	for i := range b.contacts {
		if ct := &b.contacts[i]; ct.Name == contact || ct.PeerID == contact || ct.Fingerprint == contact {
			c = ct
		}
	}
	if c == nil {
		b.mu.Unlock()
		return fmt.Errorf("no contact named %q: %w", contact, api.ErrNotFound)
	}
	for _, m := range g.members {
		if m.PeerID == c.PeerID {
			b.mu.Unlock()
			return fmt.Errorf("%s is in %s: %w", c.Name, g.Name, api.ErrExists)
		}
	}
	g.members = append(g.members, api.Member{Name: c.Name, PeerID: c.PeerID, Fingerprint: c.Fingerprint, AddedBy: b.self.Name, Online: c.Online})
	g.Epoch++
	g.Members = len(g.members)
	ev := api.Event{Type: api.EventMembership, Group: g.ID, Membership: &api.Membership{Epoch: g.Epoch, Added: []string{c.Name}}}
	b.mu.Unlock()
	b.publish(ev)
	return nil
}

// RequestJoin makes a join request from name to group, as a join with
// an invite code made WithApproval does, and returns its id.
func (b *Backend) RequestJoin(group, name string) (string, error) {
	return b.requestJoin(group, name, "", api.ApproveByInviter)
}

// RequestSharedJoin makes a join request from name to group, as a join
// with an invite code that the member invitedBy made
// WithApprovalByMembers does, and returns its id.
func (b *Backend) RequestSharedJoin(group, name, invitedBy string) (string, error) {
	return b.requestJoin(group, name, invitedBy, api.ApproveByMembers)
}

func (b *Backend) requestJoin(group, name, invitedBy, approveBy string) (string, error) {
	b.mu.Lock()
	if invitedBy == "" {
		invitedBy = b.self.Name
	}
	g, err := b.activeGroup(group)
	if err != nil {
		b.mu.Unlock()
		return "", err
	}
	b.next++
	r := api.JoinRequest{ID: fmt.Sprintf("%016x", b.next), Group: g.ID, GroupName: g.Name, Name: name,
		PeerID: peerID(name), Fingerprint: fingerprint(name), At: b.now, InvitedBy: invitedBy, ApproveBy: approveBy}
	b.requests = append(b.requests, r)
	b.mu.Unlock()
	b.publish(api.Event{Type: api.EventJoinRequest, Group: r.Group, JoinRequest: &r})
	return r.ID, nil
}

func (b *Backend) JoinRequests(ctx context.Context) ([]api.JoinRequest, error) {
	if err := b.fail(api.MethodJoinRequests); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.JoinRequest(nil), b.requests...), nil
}

// takeRequest removes the request id and returns it. Called with b.mu
// held.
func (b *Backend) takeRequest(id string) (api.JoinRequest, error) {
	for i, r := range b.requests {
		if r.ID == id {
			b.requests = append(b.requests[:i], b.requests[i+1:]...)
			return r, nil
		}
	}
	return api.JoinRequest{}, fmt.Errorf("no join request %q: %w", id, api.ErrNotFound)
}

func (b *Backend) Approve(ctx context.Context, id string) error {
	if err := b.fail(api.MethodApprove); err != nil {
		return err
	}
	b.mu.Lock()
	r, err := b.takeRequest(id)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	g, err := b.activeGroup(r.Group)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	g.members = append(g.members, api.Member{Name: r.Name, PeerID: r.PeerID, Fingerprint: r.Fingerprint, AddedBy: b.self.Name})
	g.Epoch++
	g.Members = len(g.members)
	ev := api.Event{Type: api.EventMembership, Group: g.ID, Membership: &api.Membership{Epoch: g.Epoch, Added: []string{r.Name}}}
	b.mu.Unlock()
	b.publish(ev)
	return nil
}

func (b *Backend) Deny(ctx context.Context, id string) error {
	if err := b.fail(api.MethodDeny); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.takeRequest(id)
	return err
}

func (b *Backend) InviteCode(ctx context.Context, group string, opts ...api.InviteOption) (string, error) {
	if err := b.fail(api.MethodInviteCode); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g, err := b.activeGroup(group)
	if err != nil {
		return "", err
	}
	b.invite = api.NewInviteSettings(opts...)
	return InvitePrefix + g.Name, nil
}

// LastInviteSettings returns the options of the last InviteCode.
func (b *Backend) LastInviteSettings() api.InviteSettings {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.invite
}

func (b *Backend) Join(ctx context.Context, code string) (api.Group, error) {
	if err := b.fail(api.MethodJoin); err != nil {
		return api.Group{}, err
	}
	name, ok := strings.CutPrefix(code, InvitePrefix)
	// A code ending in @inviter or @members is one whose joins wait for
	// that approval.
	name, approval, _ := strings.Cut(name, "@")
	if !ok || name == "" {
		return api.Group{}, fmt.Errorf("invite code %q does not decode: %w", abbrev(code), api.ErrBadCode)
	}
	b.mu.Lock()
	g := &group{Group: api.Group{ID: b.id("group"), Name: name, Pending: true, Approval: approval}}
	b.groups = append(b.groups, g)
	info := g.Group
	ev := api.Event{Type: api.EventGroup, Group: g.ID, GroupInfo: &info}
	b.mu.Unlock()
	b.publish(ev)
	return g.Group, nil
}

func (b *Backend) Remove(ctx context.Context, group, member string) error {
	if err := b.fail(api.MethodRemove); err != nil {
		return err
	}
	b.mu.Lock()
	g, err := b.activeGroup(group)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	at := -1
	for i, m := range g.members {
		if m.Name == member || m.PeerID == member || m.Fingerprint == member {
			at = i
		}
	}
	switch {
	case at < 0:
		b.mu.Unlock()
		return fmt.Errorf("no member %q in %s: %w", member, g.Name, api.ErrNotFound)
	case g.members[at].Self:
		b.mu.Unlock()
		return fmt.Errorf("to remove yourself, leave the group: %w", api.ErrInvalid)
	}
	name := g.members[at].Name
	g.members = append(g.members[:at], g.members[at+1:]...)
	g.Epoch++
	g.Members = len(g.members)
	ev := api.Event{Type: api.EventMembership, Group: g.ID, Membership: &api.Membership{Epoch: g.Epoch, Removed: []string{name}}}
	b.mu.Unlock()
	b.publish(ev)
	return nil
}

func (b *Backend) Leave(ctx context.Context, group string) error {
	if err := b.fail(api.MethodLeave); err != nil {
		return err
	}
	b.mu.Lock()
	g, err := b.activeGroup(group)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	g.Removed = true
	info := g.Group
	ev := api.Event{Type: api.EventGroup, Group: g.ID, GroupInfo: &info}
	b.mu.Unlock()
	b.publish(ev)
	return nil
}

// ForgetGroup drops a group that is pending, removed or damaged (or any,
// with force).
func (b *Backend) ForgetGroup(ctx context.Context, group string, force bool) error {
	if err := b.fail(api.MethodForgetGroup); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g, err := b.group(group)
	if err != nil {
		return err
	}
	if !force && !g.Pending && !g.Removed && g.Damaged == "" {
		return fmt.Errorf("%w: you are a member of %q; leave it first with 'parley leave %s' (or forget it with --force)", api.ErrInvalid, g.Name, g.Name)
	}
	for i, x := range b.groups {
		if x == g {
			b.groups = append(b.groups[:i], b.groups[i+1:]...)
			break
		}
	}
	return nil
}

func (b *Backend) Send(ctx context.Context, group, text string) (string, error) {
	if err := b.fail(api.MethodSend); err != nil {
		return "", err
	}
	b.mu.Lock()
	g, err := b.activeGroup(group)
	if err != nil {
		b.mu.Unlock()
		return "", err
	}
	m := b.appendMessage(g, b.self.Name, b.self.Fingerprint, text, nil)
	m.Own = true
	g.messages[len(g.messages)-1].Own = true
	b.mu.Unlock()
	b.publish(api.Event{Type: api.EventMessage, Group: g.ID, Message: &m})
	return m.ID, nil
}

// Deliver adds a message from another member to a group's history, as
// if it had come from the network, and returns it.
func (b *Backend) Deliver(group, sender, text string) (api.Message, error) {
	b.mu.Lock()
	g, err := b.group(group)
	if err != nil {
		b.mu.Unlock()
		return api.Message{}, err
	}
	m := b.appendMessage(g, sender, fingerprint(sender), text, nil)
	b.mu.Unlock()
	b.publish(api.Event{Type: api.EventMessage, Group: g.ID, Message: &m})
	return m, nil
}

// DeliverLate adds a message from sender that arrives now but was sent
// before the message at position seq (as one recovered by catch-up).
func (b *Backend) DeliverLate(group, sender, text string, seq uint64) (api.Message, error) {
	b.mu.Lock()
	g, err := b.group(group)
	if err != nil || seq == 0 || seq > uint64(len(g.messages)) {
		b.mu.Unlock()
		return api.Message{}, fmt.Errorf("apitest: no message %d in %s (%v)", seq, group, err)
	}
	m := b.appendMessage(g, sender, fingerprint(sender), text, nil)
	m.SentAt = g.messages[seq-1].SentAt.Add(-time.Millisecond)
	g.messages[len(g.messages)-1] = m
	b.mu.Unlock()
	b.publish(api.Event{Type: api.EventMessage, Group: g.ID, Message: &m})
	return m, nil
}

// Finalize marks every message of a group final.
func (b *Backend) Finalize(group string) error {
	b.mu.Lock()
	g, err := b.group(group)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	var evs []api.Event
	for i := range g.messages {
		if m := &g.messages[i]; !m.Final {
			m.Final = true
			evs = append(evs, api.Event{Type: api.EventFinal, Group: g.ID, Message: &api.Message{Seq: m.Seq, ID: m.ID, Group: g.ID, Final: true}})
		}
	}
	b.mu.Unlock()
	for _, ev := range evs {
		b.publish(ev)
	}
	return nil
}

// appendMessage adds a message to g. Call with b.mu held.
func (b *Backend) appendMessage(g *group, sender, fp, text string, file *api.FileInfo) api.Message {
	at := b.tick()
	m := api.Message{
		Seq: uint64(len(g.messages) + 1), ID: b.id("message"), Group: g.ID,
		Sender: sender, SenderFingerprint: fp, Epoch: g.Epoch,
		SentAt: at, ReceivedAt: at, Text: text, File: file,
	}
	g.messages = append(g.messages, m)
	return m
}

// SendFile adds a file message and then, in the background, reports its
// progress in steps of FileChunk bytes, the last with Done == Total.
func (b *Backend) SendFile(ctx context.Context, group, path string) (string, error) {
	if err := b.fail(api.MethodSendFile); err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", api.ErrInvalid, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file: %w", path, api.ErrInvalid)
	}
	b.mu.Lock()
	g, err := b.activeGroup(group)
	if err != nil {
		b.mu.Unlock()
		return "", err
	}
	info := &api.FileInfo{Name: fi.Name(), Size: fi.Size(), SHA256: strings.Repeat("ab", 32), Received: fi.Size(), Path: path}
	m := b.appendMessage(g, b.self.Name, b.self.Fingerprint, "", info)
	g.messages[len(g.messages)-1].Own = true
	m.Own = true
	b.mu.Unlock()
	b.publish(api.Event{Type: api.EventMessage, Group: g.ID, Message: &m})
	go func() {
		total := fi.Size()
		for done := int64(0); ; done = min(done+FileChunk, total) {
			b.publish(api.Event{Type: api.EventFile, Group: g.ID, File: &api.Progress{ID: m.ID, Name: info.Name, Done: done, Total: total}})
			if done == total {
				return
			}
		}
	}()
	return m.ID, nil
}

func (b *Backend) Read(ctx context.Context, group string, after uint64, limit int) ([]api.Message, error) {
	if err := b.fail(api.MethodRead); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g, err := b.group(group)
	if err != nil {
		return nil, err
	}
	var list []api.Message
	for _, m := range g.messages {
		if m.Seq > after && (limit == 0 || len(list) < limit) {
			list = append(list, m)
		}
	}
	return list, nil
}

func (b *Backend) Status(ctx context.Context) (api.Status, error) {
	if err := b.fail(api.MethodStatus); err != nil {
		return api.Status{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := api.Status{PeerID: b.self.PeerID, Peers: len(b.contacts)}
	for _, g := range b.groups {
		gs := api.GroupStatus{Group: g.Group, FinalEpoch: g.Epoch, OnlinePeers: max(len(g.members)-1, 0), Waiting: g.waiting}
		for _, m := range g.messages {
			if m.Own && !m.Final {
				gs.Outbox++
			}
		}
		if gs.Outbox > 0 && g.Epoch > 0 {
			gs.FinalEpoch = g.Epoch - 1
		}
		st.Groups = append(st.Groups, gs)
	}
	return st, nil
}

// Subscribe streams the events published after it returns, until ctx
// ends. A subscriber that does not read holds up the publishers.
func (b *Backend) Subscribe(ctx context.Context, group string) (<-chan api.Event, error) {
	if err := b.fail(api.MethodSubscribe); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &sub{ctx: ctx, ch: make(chan api.Event, 16)}
	if group != "" {
		g, err := b.group(group)
		if err != nil {
			return nil, err
		}
		s.group = g.ID
	}
	b.subs[s] = struct{}{}
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
		s.mu.Lock()
		s.closed = true
		close(s.ch)
		s.mu.Unlock()
	})
	return s.ch, nil
}

// Subscribers returns the number of event streams open.
func (b *Backend) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// publish sends ev to every subscriber of its group, waiting for each to
// take it or go away.
func (b *Backend) publish(ev api.Event) {
	b.mu.Lock()
	var subs []*sub
	for s := range b.subs {
		if s.group == "" || s.group == ev.Group {
			subs = append(subs, s)
		}
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		if !s.closed {
			select {
			case s.ch <- ev:
			case <-s.ctx.Done():
			}
		}
		s.mu.Unlock()
	}
}

func abbrev(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}
