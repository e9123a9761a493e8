package node

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
)

// Wire formats of file transfer (see files.go for the design).

// fileAnnouncement is the body of a contentFileAnnounce application
// message: all a member needs to fetch, check and decrypt a file. It
// travels inside the MLS-encrypted message, so only the members of the
// epoch it was sent in learn the content key.
//
//	struct {
//	    opaque name<V>;          // the file's base name, at most maxFileName bytes
//	    uint64 size;             // bytes, at most maxFileSize
//	    opaque sha256[32];       // of the whole file
//	    uint32 chunk_size;       // minChunkSize..maxChunkSize
//	    opaque content_key[32];  // AES-256-GCM key the chunks are sealed under
//	} FileAnnouncement;
type fileAnnouncement struct {
	name      string
	size      int64
	sha256    [32]byte
	chunkSize int
	key       [32]byte
}

const (
	maxFileName  = 1024
	minChunkSize = 4 << 10
	maxChunkSize = 1 << 20
)

// Errors of the file wire formats.
var (
	errBadAnnouncement = errors.New("node: malformed file announcement")
	errBadFileRequest  = errors.New("node: malformed file request")
	errBadChunk        = errors.New("node: malformed or forged file chunk")
)

func (a *fileAnnouncement) encode() []byte {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, []byte(a.name))
	b.AddUint64(uint64(a.size))
	b.AddBytes(a.sha256[:])
	b.AddUint32(uint32(a.chunkSize))
	b.AddBytes(a.key[:])
	return b.BytesOrPanic()
}

func decodeAnnouncement(data []byte) (*fileAnnouncement, error) {
	s := cryptobyte.String(data)
	var name, sum, key []byte
	var size uint64
	var chunk uint32
	if !codec.ReadOpaque(&s, &name) || !s.ReadUint64(&size) || !s.ReadBytes(&sum, 32) ||
		!s.ReadUint32(&chunk) || !s.ReadBytes(&key, 32) || !s.Empty() {
		return nil, errBadAnnouncement
	}
	switch {
	case len(name) == 0 || len(name) > maxFileName:
		return nil, fmt.Errorf("%w: name of %d bytes", errBadAnnouncement, len(name))
	case size > maxFileSize:
		return nil, fmt.Errorf("%w: %d bytes", errBadAnnouncement, size)
	case chunk < minChunkSize || chunk > maxChunkSize:
		return nil, fmt.Errorf("%w: chunks of %d bytes", errBadAnnouncement, chunk)
	}
	return &fileAnnouncement{name: string(name), size: int64(size), sha256: [32]byte(sum), chunkSize: int(chunk), key: [32]byte(key)}, nil
}

// chunks is the number of chunks of a file of size bytes.
func chunkCount(size int64, chunk int) int {
	return int((size + int64(chunk) - 1) / int64(chunk))
}

// chunkLen is the length of chunk i of a file.
func chunkLen(size int64, chunk, i int) int {
	return int(min(int64(chunk), size-int64(i)*int64(chunk)))
}

// fileLabel is the SignWithLabel label of file requests.
const fileLabel = "Parley File v1"

// fileRequest asks a member for chunks of a file. It is authenticated as
// a catch-up request is (ordering's SyncRequest, Loop.authenticate): the
// requester signs it with its MLS signature key, naming itself (the
// stream's peer must be its member), the responder and its clock, so that
// it is worth nothing replayed to another member or later.
//
//	struct {
//	    opaque group_id<V>;
//	    opaque requester<V>;      // the requester's member identity
//	    opaque responder<V>;      // the identity of the member asked
//	    uint64 time;              // the requester's clock, Unix milliseconds
//	    opaque nonce[16];         // random: no two requests are alike
//	    opaque file_id[16];       // the announcement's message id
//	    uint32 first;             // the first chunk wanted
//	    uint32 count;             // how many chunks from first, 1..maxWindow
//	    opaque signature_key<V>;  // the requester's MLS signature key
//	    opaque signature<V>;      // SignWithLabel(., "Parley File v1", fields above)
//	} FileRequest;
//
// The answer is one data frame per chunk, in order (see encodeChunkFrame).
type fileRequest struct {
	groupID              []byte
	requester, responder string
	time                 uint64
	nonce                [16]byte
	fileID               [16]byte
	first, count         uint32
	signatureKey         []byte
	signature            []byte
}

// maxWindow bounds the chunks of one request; with maxChunkSize it bounds
// the bytes a responder spends on one answer (within p2p's 64 MiB per
// response stream).
const maxWindow = 64

func (r *fileRequest) body(b *cryptobyte.Builder) {
	codec.AddOpaque(b, r.groupID)
	codec.AddOpaque(b, []byte(r.requester))
	codec.AddOpaque(b, []byte(r.responder))
	b.AddUint64(r.time)
	b.AddBytes(r.nonce[:])
	b.AddBytes(r.fileID[:])
	b.AddUint32(r.first)
	b.AddUint32(r.count)
	codec.AddOpaque(b, r.signatureKey)
}

// tbs is what the signature covers.
func (r *fileRequest) tbs() []byte {
	var b cryptobyte.Builder
	r.body(&b)
	return b.BytesOrPanic()
}

func (r *fileRequest) encode() []byte {
	var b cryptobyte.Builder
	r.body(&b)
	codec.AddOpaque(&b, r.signature)
	return b.BytesOrPanic()
}

func decodeFileRequest(data []byte) (*fileRequest, error) {
	r := &fileRequest{}
	s := cryptobyte.String(data)
	var requester, responder, nonce, fileID []byte
	if !codec.ReadOpaque(&s, &r.groupID) || !codec.ReadOpaque(&s, &requester) || !codec.ReadOpaque(&s, &responder) ||
		!s.ReadUint64(&r.time) || !s.ReadBytes(&nonce, 16) || !s.ReadBytes(&fileID, 16) ||
		!s.ReadUint32(&r.first) || !s.ReadUint32(&r.count) ||
		!codec.ReadOpaque(&s, &r.signatureKey) || !codec.ReadOpaque(&s, &r.signature) || !s.Empty() {
		return nil, errBadFileRequest
	}
	if r.count == 0 || r.count > maxWindow {
		return nil, fmt.Errorf("%w: %d chunks asked", errBadFileRequest, r.count)
	}
	r.requester, r.responder = string(requester), string(responder)
	r.nonce, r.fileID = [16]byte(nonce), [16]byte(fileID)
	return r, nil
}

// chunkAEAD seals and opens the chunks of one file: AES-256-GCM under the
// file's content key, with a random 96-bit nonce per seal (prepended), and
// the group id, file id and chunk index as additional data. A member that
// serves a file cannot pass one chunk for another, or a chunk of another
// file, without the open failing; a member that rewrites content under
// the key (every member knows it) is caught by the file's SHA-256.
//
// Random nonces, not the index: a sender whose file changed on disk after
// the announcement seals other bytes under the same index, which must not
// reuse a GCM nonce. At 2^32 seals per key the odds of a collision stop
// being negligible: 4,096 chunks of a 1 GiB file served a million times.
type chunkAEAD struct {
	aead cipher.AEAD
	ad   []byte // label || group id || file id; the index is appended
}

const chunkLabel = "parley file chunk v1\x00"

func newChunkAEAD(key [32]byte, groupID []byte, fileID [16]byte) (*chunkAEAD, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	ad := make([]byte, 0, len(chunkLabel)+len(groupID)+16+4)
	ad = append(append(append(ad, chunkLabel...), groupID...), fileID[:]...)
	return &chunkAEAD{aead: aead, ad: ad}, nil
}

// sealedLen is the length of a sealed chunk of n bytes: nonce, ciphertext
// and tag.
func (c *chunkAEAD) sealedLen(n int) int { return c.aead.NonceSize() + n + c.aead.Overhead() }

func (c *chunkAEAD) adFor(index uint32) []byte {
	return binary.BigEndian.AppendUint32(c.ad[:len(c.ad):len(c.ad)], index)
}

// encodeChunkFrame appends a response frame to dst: the chunk's index
// (uint32), a random nonce, and the chunk sealed. (cipher's
// NewGCMWithRandomNonce does the same five times slower.)
func (c *chunkAEAD) encodeChunkFrame(dst []byte, index uint32, plain []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, index)
	n := len(dst)
	dst = append(dst, make([]byte, c.aead.NonceSize())...)
	nonce := dst[n:]
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail (Go 1.24)
	}
	return c.aead.Seal(dst, nonce, plain, c.adFor(index))
}

// openChunkFrame opens a response frame: it returns the chunk's index and
// its bytes, decrypted into dst[:0] (which must not overlap frame), or in
// place when dst is nil (the bytes then alias frame).
func (c *chunkAEAD) openChunkFrame(dst, frame []byte) (uint32, []byte, error) {
	ns := c.aead.NonceSize()
	if len(frame) < 4+ns+c.aead.Overhead() {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", errBadChunk, len(frame))
	}
	index := binary.BigEndian.Uint32(frame)
	nonce, sealed := frame[4:4+ns], frame[4+ns:]
	if dst == nil {
		dst = sealed
	}
	plain, err := c.aead.Open(dst[:0], nonce, sealed, c.adFor(index))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: chunk %d", errBadChunk, index)
	}
	return index, plain, nil
}
