package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/p2p"
)

// The serving side of file transfer (see files.go).

// protoFile carries a member's request for chunks of a file (fileRequest)
// and the chunks, sealed, one frame each.
const protoFile = "parley-file/1"

// fileFreshness is how far a file request's time may lie from the
// responder's clock: ordering's window for catch-up requests.
const fileFreshness = 10 * time.Minute

// serveAhead is how many chunks a responder reads and seals ahead of the
// one it sends.
const serveAhead = 2

// testHookServeChunk, if set, runs before each chunk served: tests stop
// a transfer midway with it. It is nil outside tests.
var testHookServeChunk atomic.Pointer[func(ctx context.Context, index uint32) error]

// errUnauthenticated is why a file request was refused; the requester is
// told errNotMember whatever the reason.
var errUnauthenticated = errors.New("node: file request not authenticated")

// signFileRequest completes a request as this member and signs it, on
// the group's goroutine (it reads the loop's state).
func (g *groupRunner) signFileRequest(ctx context.Context, r *fileRequest) error {
	r.time = uint64(time.Now().UnixMilli())
	if _, err := randRead(r.nonce[:]); err != nil {
		return err
	}
	err := g.do(ctx, func() error {
		if g.loop.Removed() {
			return errFetchStopped
		}
		st := g.loop.State()
		if st == nil {
			return errFetchStopped
		}
		r.requester = g.loop.Self()
		r.signatureKey = st.Signer().PublicKey()
		sig, err := st.Suite().SignWithLabel(st.Signer(), fileLabel, r.tbs(), nil)
		if err != nil {
			return err
		}
		r.signature = sig
		return nil
	})
	if errors.Is(err, errStopped) {
		return fmt.Errorf("%w: %w", errFetchStopped, err)
	}
	return err
}

// authenticateFileRequest checks, on the group's goroutine, that a file
// request comes from a current member, as ordering checks a catch-up
// request (Loop.authenticate): the requester is the member of the stream's
// authenticated peer, the request names this member and a time near its
// clock, and it is signed with the key of the requester's leaf in the
// canonical epoch. A member removed from the group serves nothing.
func (g *groupRunner) authenticateFileRequest(from peer.ID, r *fileRequest, now time.Time) error {
	p, _, err := ParseMemberID(r.requester)
	switch {
	case err != nil || p != from:
		return fmt.Errorf("%w: requester %q is not the peer that asked", errUnauthenticated, r.requester)
	case string(r.groupID) != string(g.gid):
		return fmt.Errorf("%w: another group", errUnauthenticated)
	case g.loop == nil || g.loop.Removed():
		return fmt.Errorf("%w: not a member here", errUnauthenticated)
	case r.responder != g.loop.Self():
		return fmt.Errorf("%w: request made for another member", errUnauthenticated)
	}
	if d := now.Sub(time.UnixMilli(int64(r.time))); d > fileFreshness || d < -fileFreshness {
		return fmt.Errorf("%w: request time %v off this member's clock", errUnauthenticated, d.Round(time.Second))
	}
	if !slices.Contains(g.loop.Tip().Members, r.requester) {
		return fmt.Errorf("%w: requester is not a current member", errUnauthenticated)
	}
	st := g.loop.State()
	if st == nil {
		return fmt.Errorf("%w: no canonical state", errUnauthenticated)
	}
	li, ok := st.Tree().FindSignatureKey(r.signatureKey)
	if !ok || ordering.Identity(st.Tree().Leaf(li)) != r.requester {
		return fmt.Errorf("%w: signature key not the requester's", errUnauthenticated)
	}
	if err := st.Suite().VerifyWithLabelRepeated(r.signatureKey, fileLabel, r.tbs(), r.signature); err != nil {
		return fmt.Errorf("%w: %w", errUnauthenticated, err)
	}
	return nil
}

// serveFile answers a member's request for chunks of a file. Nothing is
// read or sent before the requester is authenticated; a refusal says the
// same to anyone (errNotMember), whether this node is in the group or
// not. What one answer spends is bounded by maxWindow chunks of at most
// maxChunkSize, and p2p bounds the requests a peer has under way.
func (n *Node) serveFile(ctx context.Context, from peer.ID, req []byte, w p2p.ResponseWriter) error {
	r, err := decodeFileRequest(req)
	if err != nil {
		n.log.Debug("file request refused", "peer", from, "err", err)
		return errNotMember
	}
	g := n.runner(hex.EncodeToString(r.groupID))
	if g == nil || g.loop == nil {
		return errNotMember
	}
	if err := g.do(ctx, func() error { return g.authenticateFileRequest(from, r, time.Now()) }); err != nil {
		n.log.Debug("file request refused", "peer", from, "group", g.hexID[:8], "err", err)
		return errNotMember
	}
	select {
	case g.files.serving <- struct{}{}:
		defer func() { <-g.files.serving }()
	default:
		return errServeBusy
	}
	return g.files.serve(ctx, r, w)
}

// maxServing bounds the file requests a member serves at once in a
// group, whoever asks (p2p bounds them per peer): with serveAhead, what
// serving spends in memory is bounded, and a member asked by many sends
// the others to the members that have the file too.
const maxServing = 8

// errServeBusy answers a member's file request past maxServing.
var errServeBusy = errors.New("busy serving files; ask again")

// serve sends the chunks a member asked for, sealed, read from the file
// on disk.
func (t *fileTransfers) serve(ctx context.Context, r *fileRequest, w p2p.ResponseWriter) error {
	g := t.g
	id := hex.EncodeToString(r.fileID[:])
	rec, err := g.fileRecord(ctx, id)
	if err != nil {
		return errNoFile
	}
	var path string
	switch rec.State {
	case fileOwn:
		path = rec.Source
	case fileDone:
		path = rec.Path
	default:
		return errNoFile
	}
	if len(rec.Key) != 32 || rec.Chunk < minChunkSize || rec.Chunk > maxChunkSize {
		return errNoFile
	}
	if chunks := rec.chunks(); int64(r.first)+int64(r.count) > int64(chunks) {
		return fmt.Errorf("chunks %d to %d asked of %d", r.first, r.first+r.count, chunks)
	}
	var f *os.File
	if rec.State == fileDone {
		f, err = openReceived(path, t.partPath(id))
	} else {
		f, err = os.Open(path)
	}
	if err != nil {
		g.n.log.Warn("a file to serve is gone", "group", g.hexID[:8], "file", id[:8], "path", path, "err", err)
		return errNoFile
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != rec.Size || rec.State == fileOwn && fi.ModTime().UnixNano() != rec.ModTime {
		g.n.log.Warn("a file sent changed since; not served (send it again)", "group", g.hexID[:8], "file", id[:8], "path", path)
		return errNoFile
	}
	aead, err := newChunkAEAD([32]byte(rec.Key), g.gid, r.fileID)
	if err != nil {
		return err
	}
	// Chunks are read and sealed on a goroutine of their own, a chunk or
	// two ahead of the one being sent: the disk and the cipher work
	// while the stream waits for the requester's window.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, serveAhead+1)
	for range serveAhead + 1 {
		free <- make([]byte, 0, 4+aead.sealedLen(rec.Chunk))
	}
	frames := make(chan []byte, serveAhead)
	var rerr error // the reader's, read once frames is closed
	go func() {
		defer close(frames)
		plain := make([]byte, rec.Chunk)
		for i := r.first; i < r.first+r.count; i++ {
			var frame []byte
			select {
			case frame = <-free:
			case <-ctx.Done():
				return
			}
			if hook := testHookServeChunk.Load(); hook != nil {
				if rerr = (*hook)(ctx, i); rerr != nil {
					return
				}
			}
			n := chunkLen(rec.Size, rec.Chunk, int(i))
			if _, err := f.ReadAt(plain[:n], int64(i)*int64(rec.Chunk)); err != nil {
				g.n.log.Warn("reading a file to serve", "group", g.hexID[:8], "file", id[:8], "err", err)
				rerr = errNoFile
				return
			}
			frames <- aead.encodeChunkFrame(frame[:0], i, plain[:n])
		}
	}()
	i := r.first
	for frame := range frames {
		if err := w.Write(frame); err != nil {
			cancel()
			for range frames {
			}
			return err
		}
		free <- frame
		if rec.State == fileOwn {
			t.noteServed(id, rec, int(i))
		}
		i++
	}
	if rerr != nil {
		return rerr
	}
	return ctx.Err()
}

// servedState is what this member served of a file it sent: the
// chunks served at least once. A file is all sent once each was.
type servedState struct {
	chunks  bitset
	count   int
	evented time.Time
}

// noteServed records chunk i of an own file served, and reports the
// file's progress (all sent once each chunk was served once).
func (t *fileTransfers) noteServed(id string, rec *fileRecord, i int) {
	t.mu.Lock()
	s := t.served[id]
	if s == nil {
		s = &servedState{chunks: newBitset(rec.chunks())}
		t.served[id] = s
	}
	if s.chunks.has(i) {
		t.mu.Unlock()
		return
	}
	s.chunks.set(i)
	s.count++
	done := min(int64(s.count)*int64(rec.Chunk), rec.Size)
	event := done == rec.Size || time.Since(s.evented) >= eventEvery
	if event {
		s.evented = time.Now()
	}
	t.mu.Unlock()
	if event {
		t.g.n.broadcast(api.Event{Type: api.EventFile, Group: t.g.hexID, File: &api.Progress{ID: id, Name: rec.Name, Done: done, Total: rec.Size}})
	}
}

// betweenOpens, if set, runs between openReceived's opens (tests).
var betweenOpens func()

// openReceived opens a received file at path, or its .part file: a file
// is recorded as received a moment before its move into place (finish),
// or before a crash that resume mends, and its .part file is then whole,
// checked and synced. A move between the two opens finds the file at path.
func openReceived(path, part string) (*os.File, error) {
	f, err := os.Open(path)
	if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	if betweenOpens != nil {
		betweenOpens()
	}
	f, err = os.Open(part)
	if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	return os.Open(path)
}
