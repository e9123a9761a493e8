package ordering

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/parley-p2p/parley/mls/suite"
)

// SignatureMemo remembers signatures that verified, keyed by a hash of the
// suite, key, label, content and signature, so that the same signed bytes
// are verified once per process. It is safe for concurrent use.
type SignatureMemo struct {
	mu sync.Mutex
	ok map[[32]byte]struct{}
}

// maxMemo bounds the memo; past it, the memo starts again empty.
const maxMemo = 1 << 20

// NewSignatureMemo returns an empty memo.
func NewSignatureMemo() *SignatureMemo {
	return &SignatureMemo{ok: map[[32]byte]struct{}{}}
}

// VerifyWithLabel is cs.VerifyWithLabelRepeated (heads come from the same
// members again and again), remembered on success.
func (m *SignatureMemo) VerifyWithLabel(cs suite.CipherSuite, key []byte, label string, content, sig []byte) error {
	if m == nil {
		return cs.VerifyWithLabelRepeated(key, label, content, sig)
	}
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{{byte(cs >> 8), byte(cs)}, key, []byte(label), content, sig} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var k [32]byte
	h.Sum(k[:0])
	m.mu.Lock()
	_, seen := m.ok[k]
	m.mu.Unlock()
	if seen {
		return nil
	}
	if err := cs.VerifyWithLabelRepeated(key, label, content, sig); err != nil {
		return err
	}
	m.mu.Lock()
	if len(m.ok) >= maxMemo {
		m.ok = map[[32]byte]struct{}{}
	}
	m.ok[k] = struct{}{}
	m.mu.Unlock()
	return nil
}
