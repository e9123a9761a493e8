package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/store"
)

// Files travel as application messages under the group's keys: a header
// (contentFile: name, size, SHA-256, chunk count), whose message id is the
// file's id, then chunks (contentFileChunk: file id, index, data).
// Receivers keep the chunks in the store, in the same transaction that
// marks them delivered, and write the file out once all are there and its
// hash checks. The sender keeps its position in the store, so a transfer
// resumes after a restart.
const (
	chunkSize      = 256 << 10
	chunksPerTick  = 4 // at the default 100ms tick: 10 MiB/s per file
	maxFileSize    = 1 << 30
	scopeSending   = "sending"
	scopeReceiving = "receiving"
	scopeFileDone  = "filedone"
)

type fileHeader struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Chunk  int    `json:"chunk"`
	Chunks int    `json:"chunks"`
}

// fileSend is a transfer this member has going (scope "sending", key the
// group id, "|", the file id).
type fileSend struct {
	ID     string     `json:"id"` // hex message id of the header
	Path   string     `json:"path"`
	Header fileHeader `json:"header"`
	Next   int        `json:"next"`
}

// fileReceive is a file arriving (scope "receiving").
type fileReceive struct {
	Header *fileHeader `json:"header,omitempty"`
	Have   int         `json:"have"`
}

func fileKey(g *groupRunner, id string) string { return g.hexID + "|" + id }

// fileGroup is the store "group" holding the chunks received of a file.
func fileGroup(gid []byte, id []byte) []byte {
	return append(append([]byte{'F'}, gid...), id...)
}

// SendFile implements api.Backend.
func (n *Node) SendFile(ctx context.Context, ref, path string) (string, error) {
	g, err := n.activeGroup(ref)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file", api.ErrInvalid, abs)
	}
	if fi.Size() > maxFileSize {
		return "", fmt.Errorf("%w: %s is larger than 1 GiB", api.ErrInvalid, abs)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	hdr := fileHeader{Name: filepath.Base(abs), Size: fi.Size(), SHA256: hex.EncodeToString(h.Sum(nil)), Chunk: chunkSize,
		Chunks: int((fi.Size() + chunkSize - 1) / chunkSize)}
	body, _ := json.Marshal(hdr)
	var id string
	err = g.do(ctx, func() error {
		var err error
		fs := &fileSend{Path: abs, Header: hdr}
		// The transfer is recorded with its header, in one transaction.
		id, err = g.send(contentFile, body, func(b *store.Batch, id string) {
			fs.ID = id
			rec, _ := json.Marshal(fs)
			b.PutSetting(scopeSending, fileKey(g, id), rec)
		})
		if err != nil {
			return err
		}
		fs.ID = id
		g.sending[id] = fs
		return nil
	})
	return id, err
}

// loadSending resumes this member's transfers after a restart.
func (g *groupRunner) loadSending() {
	recs, err := g.n.st.Settings(g.n.ctx, scopeSending)
	if err != nil {
		return
	}
	for k, v := range recs {
		if !strings.HasPrefix(k, g.hexID+"|") {
			continue
		}
		var fs fileSend
		if json.Unmarshal(v, &fs) == nil {
			g.sending[fs.ID] = &fs
		}
	}
}

// resumeReceiving finishes, after a restart, the files whose chunks are all
// in the store: the count of chunks a file record keeps is saved only now
// and then, and a file whose last chunk arrived before a crash (or whose
// writing out a crash cut short) got no further chunk to complete it. The
// store's chunks, not the saved count, decide. It runs on the group's
// goroutine.
func (g *groupRunner) resumeReceiving() {
	recs, err := g.n.st.Settings(g.n.ctx, scopeReceiving)
	if err != nil {
		return
	}
	for k, v := range recs {
		id, ok := strings.CutPrefix(k, g.hexID+"|")
		if !ok {
			continue
		}
		var r fileReceive
		if json.Unmarshal(v, &r) != nil || r.Header == nil {
			continue
		}
		raw, err := hex.DecodeString(id)
		if err != nil {
			continue
		}
		chunks, err := g.n.st.Log(g.n.ctx, fileGroup(g.gid, raw), 0, 0)
		if err != nil {
			continue
		}
		r.Have = len(chunks)
		g.receiving[id] = &r
		g.maybeComplete(id, &r)
	}
}

// pumpFiles sends the next chunks of the transfers going.
func (g *groupRunner) pumpFiles() {
	for id, fs := range g.sending {
		if g.loop.Removed() {
			return
		}
		for range chunksPerTick {
			if fs.Next >= fs.Header.Chunks {
				break
			}
			data, err := readChunk(fs.Path, fs.Next)
			if err != nil {
				g.n.log.Error("file transfer stopped: cannot read the file", "file", fs.Path, "err", err)
				g.dropSending(id)
				break
			}
			raw, _ := hex.DecodeString(id)
			body := make([]byte, 0, len(raw)+4+len(data))
			body = append(body, raw...)
			body = binary.BigEndian.AppendUint32(body, uint32(fs.Next))
			body = append(body, data...)
			next := *fs
			next.Next++
			rec, _ := json.Marshal(&next)
			if _, err := g.send(contentFileChunk, body, func(b *store.Batch, _ string) {
				b.PutSetting(scopeSending, fileKey(g, id), rec)
			}); err != nil {
				g.n.log.Error("file transfer stopped", "file", fs.Path, "err", err)
				g.dropSending(id)
				break
			}
			fs.Next++
		}
		g.n.broadcast(api.Event{Type: api.EventFile, Group: g.hexID, File: &api.Progress{
			ID: id, Name: fs.Header.Name, Done: min(int64(fs.Next)*int64(fs.Header.Chunk), fs.Header.Size), Total: fs.Header.Size}})
		if fs.Next >= fs.Header.Chunks {
			g.dropSending(id)
		}
	}
}

func (g *groupRunner) dropSending(id string) {
	delete(g.sending, id)
	b := g.n.st.NewBatch()
	b.DeleteSetting(scopeSending, fileKey(g, id))
	if err := g.n.st.Write(context.Background(), b); err != nil {
		g.n.log.Warn("forgetting a finished transfer", "err", err)
	}
}

func readChunk(path string, i int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, chunkSize)
	k, err := f.ReadAt(buf, int64(i)*chunkSize)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if k == 0 {
		return nil, fmt.Errorf("the file shrank")
	}
	return buf[:k], nil
}

// chunkEntry splits a chunk message body.
func chunkEntry(body []byte) (id []byte, index uint32, data []byte, ok bool) {
	if len(body) < 20 {
		return nil, 0, nil, false
	}
	return body[:16], binary.BigEndian.Uint32(body[16:20]), body[20:], true
}

// recordChunks adds the received chunks of out to b (called by persist).
func (g *groupRunner) recordChunks(b *store.Batch, out *ordering.Output, skip map[string]bool) {
	for _, d := range out.Deliveries {
		if d.ContentType != contentFileChunk {
			continue
		}
		id, index, data, ok := chunkEntry(d.Body)
		if !ok {
			continue
		}
		key := binary.BigEndian.AppendUint32(nil, index)
		fg := fileGroup(g.gid, id)
		if skip[skipKey(fg, key)] {
			continue
		}
		b.AppendLog(fg, store.LogEntry{ID: key, Envelope: data})
	}
}

// receiving returns the state of a file arriving.
func (g *groupRunner) receivingState(id string) *fileReceive {
	if r := g.receiving[id]; r != nil {
		return r
	}
	r := &fileReceive{}
	if raw, err := g.n.st.Setting(g.n.ctx, scopeReceiving, fileKey(g, id)); err == nil {
		json.Unmarshal(raw, r)
	}
	g.receiving[id] = r
	return r
}

func (g *groupRunner) saveReceiving(id string, r *fileReceive) {
	rec, _ := json.Marshal(r)
	b := g.n.st.NewBatch()
	b.PutSetting(scopeReceiving, fileKey(g, id), rec)
	if err := g.n.st.Write(context.Background(), b); err != nil {
		g.n.log.Warn("recording a file's progress", "err", err)
	}
}

func (g *groupRunner) fileHeader(d ordering.Delivery) {
	var h fileHeader
	if json.Unmarshal(d.Body, &h) != nil || h.Chunks < 0 || h.Size < 0 || h.Size > maxFileSize || h.Chunk <= 0 {
		return
	}
	id := hex.EncodeToString(d.ID[:])
	r := g.receivingState(id)
	r.Header = &h
	g.saveReceiving(id, r)
	g.maybeComplete(id, r)
}

func (g *groupRunner) fileChunk(d ordering.Delivery) {
	raw, _, _, ok := chunkEntry(d.Body)
	if !ok {
		return
	}
	id := hex.EncodeToString(raw)
	r := g.receivingState(id)
	r.Have++
	if r.Header != nil {
		g.n.broadcast(api.Event{Type: api.EventFile, Group: g.hexID, File: &api.Progress{
			ID: id, Name: r.Header.Name, Done: min(int64(r.Have)*int64(r.Header.Chunk), r.Header.Size), Total: r.Header.Size}})
	}
	if r.Have%16 == 0 || r.Header != nil && r.Have >= r.Header.Chunks {
		g.saveReceiving(id, r)
	}
	g.maybeComplete(id, r)
}

// maybeComplete writes a file out once all its chunks are in the store and
// its hash checks, then drops the chunks.
func (g *groupRunner) maybeComplete(id string, r *fileReceive) {
	if r.Header == nil || r.Have < r.Header.Chunks {
		return
	}
	raw, _ := hex.DecodeString(id)
	fg := fileGroup(g.gid, raw)
	chunks, err := g.n.st.Log(g.n.ctx, fg, 0, 0)
	if err != nil {
		g.n.log.Error("reading a received file", "err", err)
		return
	}
	byIndex := map[uint32][]byte{}
	for _, c := range chunks {
		if len(c.ID) == 4 {
			byIndex[binary.BigEndian.Uint32(c.ID)] = c.Envelope
		}
	}
	if len(byIndex) < r.Header.Chunks {
		r.Have = len(byIndex)
		return
	}
	dir := filepath.Join(g.n.files, g.hexID[:16])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		g.n.log.Error("making the files directory", "err", err)
		return
	}
	name := safeName(r.Header.Name)
	tmp, err := os.CreateTemp(dir, ".part-*")
	if err != nil {
		g.n.log.Error("writing a received file", "err", err)
		return
	}
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	var size int64
	for i := range r.Header.Chunks {
		k, _ := w.Write(byIndex[uint32(i)])
		size += int64(k)
	}
	ok := size == r.Header.Size && hex.EncodeToString(h.Sum(nil)) == r.Header.SHA256
	if err := tmp.Sync(); err != nil {
		ok = false
	}
	tmp.Close()
	b := g.n.st.NewBatch()
	b.DeleteGroup(fg)
	b.DeleteSetting(scopeReceiving, fileKey(g, id))
	if !ok {
		os.Remove(tmp.Name())
		g.n.log.Warn("received file does not match its hash; dropped", "file", r.Header.Name)
		b.PutSetting(scopeFileDone, fileKey(g, id), []byte("!corrupt"))
	} else {
		final := uniquePath(filepath.Join(dir, name))
		if err := os.Rename(tmp.Name(), final); err != nil {
			g.n.log.Error("saving a received file", "err", err)
			return
		}
		b.PutSetting(scopeFileDone, fileKey(g, id), []byte(final))
		g.n.log.Info("file received", "group", g.hexID[:8], "file", final, "bytes", size)
	}
	if err := g.n.st.Write(context.Background(), b); err != nil {
		g.n.log.Warn("dropping a received file's chunks", "err", err)
	}
	delete(g.receiving, id)
	g.n.broadcast(api.Event{Type: api.EventFile, Group: g.hexID, File: &api.Progress{ID: id, Name: r.Header.Name, Done: size, Total: r.Header.Size}})
}

// fileState fills in how much of a file arrived and where it is.
func (g *groupRunner) fileState(m *api.Message) {
	if m.Own {
		m.File.Received = m.File.Size
		return
	}
	if p, err := g.n.st.Setting(g.n.ctx, scopeFileDone, fileKey(g, m.ID)); err == nil {
		if !strings.HasPrefix(string(p), "!") {
			m.File.Path = string(p)
			m.File.Received = m.File.Size
		}
		return
	}
	if raw, err := g.n.st.Setting(g.n.ctx, scopeReceiving, fileKey(g, m.ID)); err == nil {
		var r fileReceive
		if json.Unmarshal(raw, &r) == nil && r.Header != nil {
			m.File.Received = min(int64(r.Have)*int64(r.Header.Chunk), m.File.Size)
		}
	}
}

// safeName keeps a received file's name inside the files directory.
func safeName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || name == ".." || name == "" || strings.HasPrefix(name, ".") {
		name = "file" + name
	}
	return name
}

func uniquePath(p string) string {
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return p
	}
	ext := filepath.Ext(p)
	base := strings.TrimSuffix(p, ext)
	for i := 1; ; i++ {
		c := fmt.Sprintf("%s (%d)%s", base, i, ext)
		if _, err := os.Stat(c); os.IsNotExist(err) {
			return c
		}
	}
}
