// Package server implements the MLSClient gRPC service of the MLS interop
// test framework (github.com/mlswg/mls-implementations, interop/) on top of
// Parley's mls packages, so that the official test-runner, or Parley's own
// driver, can make Parley talk MLS with itself and with other stacks.
//
// Conventions of the service that the .proto leaves open, as the other
// stacks implement them:
//   - every message field (KeyPackage, Welcome, GroupInfo, proposals,
//     commits, application messages) is a TLS-serialized MLSMessage;
//     ratchet_tree is the serialized ratchet tree; external_sender is a
//     serialized ExternalSender;
//   - state ids, transaction ids, reinit ids and signer ids share one
//     number space, so StorePSK can take either a state or a pending
//     KeyPackage, and Free releases any of them;
//   - Commit stages a commit without advancing the state; HandlePendingCommit
//     (or HandleCommit of that same commit) adopts it. Every new epoch gets
//     a new state id; the old id keeps working for late application messages;
//   - encrypt_handshake, given when a member starts, makes its proposals and
//     commits PrivateMessages; external commits are always PublicMessages;
//   - external_tree sends the ratchet tree beside the Welcome or GroupInfo
//     instead of inside it; a GroupInfo always carries external_pub;
//   - by-reference proposal lists may hold the member's own proposals,
//     which it recognises instead of processing.
package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
)

// Name is the stack name the server reports.
const Name = "parley"

// defaultHistory is how many past epochs of each group a member keeps for
// late application messages.
const defaultHistory = 32

// Server is the MLSClient service. Its methods are safe for concurrent
// use; operations on one member are serialized.
type Server struct {
	mlsclient.UnimplementedMLSClientServer

	padding framing.PaddingFunc
	history int
	grease  bool

	mu      sync.Mutex
	lastID  uint32
	objects map[uint32]any // *stateEntry, *transaction, *reinitEntry, *externalSigner
}

// Option configures a Server.
type Option func(*Server)

// WithPadding sets how members pad PrivateMessage content (default: to a
// multiple of 32 bytes).
func WithPadding(p framing.PaddingFunc) Option { return func(s *Server) { s.padding = p } }

// WithGrease sets whether members put GREASE values (RFC 9420 §13.5) in
// the KeyPackages, leaves and GroupInfos they make (default on: peers
// must ignore them, and the test-runner checks they do).
func WithGrease(on bool) Option { return func(s *Server) { s.grease = on } }

// WithHistory sets how many past epochs of a group each member keeps for
// late application messages (default 32).
func WithHistory(n int) Option { return func(s *Server) { s.history = n } }

// New returns a Server holding no state.
func New(opts ...Option) *Server {
	s := &Server{history: defaultHistory, grease: true, objects: map[uint32]any{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// member is one client of the service: an identity and what it holds
// across its epochs (PSKs, settings, past epochs). Its mutex guards it and
// its stateEntries.
type member struct {
	mu       sync.Mutex
	identity []byte
	encrypt  bool
	cfg      *group.Config
	psks     *pskStore
	past     map[string]*group.History // by group id
	history  int
}

func (s *Server) newMember(identity []byte, encrypt bool) *member {
	psks := &pskStore{external: map[string][]byte{}}
	return &member{
		identity: append([]byte(nil), identity...),
		encrypt:  encrypt,
		cfg:      &group.Config{Padding: s.padding, PSKs: psks, Grease: s.grease},
		psks:     psks,
		past:     map[string]*group.History{},
		history:  s.history,
	}
}

// retire keeps a replaced epoch for late application messages.
func (m *member) retire(st *group.State) {
	h := m.past[string(st.GroupID())]
	if h == nil {
		h = &group.History{MaxEpochs: m.history}
		m.past[string(st.GroupID())] = h
	}
	h.Add(st, time.Now())
}

// pastEpoch returns a kept past epoch of a group.
func (m *member) pastEpoch(groupID []byte, epoch uint64) *group.State {
	if h := m.past[string(groupID)]; h != nil {
		return h.Find(epoch)
	}
	return nil
}

// stateEntry is a member's state in one epoch, with what the interop
// service remembers about it.
type stateEntry struct {
	m *member
	s *group.State
	// known maps proposal messages this state sent or processed to their
	// ProposalRefs, so that they are not processed twice.
	known map[string][]byte
	// pending is the member's own staged commit; pendingMsg its message.
	pending    *group.StagedCommit
	pendingMsg []byte
	// superseded is set once a later epoch replaced this one: the State
	// now lives in the member's history and only reads late messages.
	superseded bool
}

// transaction is a KeyPackage waiting for a Welcome.
type transaction struct {
	m      *member
	bundle *group.KeyPackageBundle
}

// reinitEntry is a member between a committed ReInit and the new group:
// old is the last epoch of the old group, bundle the new KeyPackage.
type reinitEntry struct {
	m      *member
	old    *group.State
	bundle *group.KeyPackageBundle
}

// externalSigner is a signing key listed in groups' external_senders.
type externalSigner struct {
	cs     suite.CipherSuite
	signer *suite.SignaturePrivateKey
}

// pskStore holds a member's external PSKs.
type pskStore struct {
	mu       sync.RWMutex
	external map[string][]byte
}

func (p *pskStore) ExternalPSK(id []byte) ([]byte, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	v, ok := p.external[string(id)]
	return v, ok
}

// ResumptionPSK answers for no other group: a state resolves its own
// group's resumption PSKs, and reinit and branch joins get the old state.
func (p *pskStore) ResumptionPSK([]byte, uint64) ([]byte, bool) { return nil, false }

func (p *pskStore) put(id, secret []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.external[string(id)] = append([]byte(nil), secret...)
}

// add registers an object under a new id.
func (s *Server) add(obj any) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.lastID++
		if _, used := s.objects[s.lastID]; !used && s.lastID != 0 {
			s.objects[s.lastID] = obj
			return s.lastID
		}
	}
}

func lookup[T any](s *Server, id uint32, what string) (T, error) {
	s.mu.Lock()
	obj, ok := s.objects[id]
	s.mu.Unlock()
	v, isT := obj.(T)
	if !ok || !isT {
		var zero T
		return zero, fmt.Errorf("%w: no %s %d", ErrUnknownID, what, id)
	}
	return v, nil
}

// withState runs f on a state entry with its member locked.
func (s *Server) withState(id uint32, f func(e *stateEntry) error) error {
	e, err := lookup[*stateEntry](s, id, "state")
	if err != nil {
		return grpcError(err)
	}
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	return grpcError(f(e))
}

// current returns the entry's State for an operation that needs the
// current epoch.
func (e *stateEntry) current() (*group.State, error) {
	if e.superseded {
		return nil, fmt.Errorf("%w: state of epoch %d was replaced by a later epoch", ErrBadRequest, e.s.Epoch())
	}
	return e.s, nil
}

// Name reports the stack's name.
func (s *Server) Name(context.Context, *mlsclient.NameRequest) (*mlsclient.NameResponse, error) {
	return &mlsclient.NameResponse{Name: Name}, nil
}

// SupportedCiphersuites lists every suite of the mls package.
func (s *Server) SupportedCiphersuites(context.Context, *mlsclient.SupportedCiphersuitesRequest) (*mlsclient.SupportedCiphersuitesResponse, error) {
	out := make([]uint32, len(suite.All))
	for i, cs := range suite.All {
		out[i] = uint32(cs)
	}
	return &mlsclient.SupportedCiphersuitesResponse{Ciphersuites: out}, nil
}

// Free forgets a state, transaction, reinit or signer id.
func (s *Server) Free(_ context.Context, req *mlsclient.FreeRequest) (*mlsclient.FreeResponse, error) {
	s.mu.Lock()
	_, ok := s.objects[req.StateId]
	delete(s.objects, req.StateId)
	s.mu.Unlock()
	if !ok {
		return nil, grpcError(fmt.Errorf("%w: %d", ErrUnknownID, req.StateId))
	}
	return &mlsclient.FreeResponse{}, nil
}

// StorePSK installs an external PSK for the member owning a state or a
// pending KeyPackage; the member's later states see it too.
func (s *Server) StorePSK(_ context.Context, req *mlsclient.StorePSKRequest) (*mlsclient.StorePSKResponse, error) {
	s.mu.Lock()
	obj := s.objects[req.StateOrTransactionId]
	s.mu.Unlock()
	var m *member
	switch o := obj.(type) {
	case *stateEntry:
		m = o.m
	case *transaction:
		m = o.m
	case *reinitEntry:
		m = o.m
	default:
		return nil, grpcError(fmt.Errorf("%w: no state or transaction %d", ErrUnknownID, req.StateOrTransactionId))
	}
	m.psks.put(req.PskId, req.PskSecret)
	return &mlsclient.StorePSKResponse{}, nil
}
