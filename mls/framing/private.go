package framing

import (
	"crypto/rand"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// EpochKeys are the keys of an epoch that protect PrivateMessages.
type EpochKeys struct {
	Suite            suite.CipherSuite
	SenderDataSecret []byte
	Tree             *secrettree.Tree
}

// ratchetFor returns the ratchet that protects content of type ct (§9.1).
func ratchetFor(ct wire.ContentType) secrettree.RatchetType {
	if ct == wire.ContentApplication {
		return secrettree.Application
	}
	return secrettree.Handshake
}

// SenderDataKeyNonce derives the key and nonce that encrypt the sender data
// of a PrivateMessage with the given content ciphertext (§6.3.2).
func SenderDataKeyNonce(cs suite.CipherSuite, senderDataSecret, ciphertext []byte) (key, nonce []byte, err error) {
	sample := ciphertext
	if len(sample) > cs.Nh() {
		sample = sample[:cs.Nh()]
	}
	key, err = cs.ExpandWithLabel(senderDataSecret, "key", sample, uint16(cs.Nk()))
	if err != nil {
		return nil, nil, err
	}
	nonce, err = cs.ExpandWithLabel(senderDataSecret, "nonce", sample, uint16(cs.Nn()))
	if err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// applyReuseGuard XORs the reuse guard into the first four bytes of the
// nonce (§6.3.1), returning a new slice.
func applyReuseGuard(nonce []byte, guard [4]byte) []byte {
	out := append([]byte(nil), nonce...)
	for i := range guard {
		out[i] ^= guard[i]
	}
	return out
}

// PaddingFunc returns the number of zero bytes to append to a
// PrivateMessageContent of the given length.
type PaddingFunc func(contentLen int) int

// PadTo returns a PaddingFunc that pads the content to a multiple of block
// bytes, hiding its exact length.
func PadTo(block int) PaddingFunc {
	return func(n int) int {
		if block <= 1 {
			return 0
		}
		return (block - n%block) % block
	}
}

// EncryptPrivateMessage encrypts signed content from a member as a
// PrivateMessage (§6.3), consuming the next key of the sender's ratchet.
// pad may be nil for no padding.
func EncryptPrivateMessage(keys *EpochKeys, content *wire.FramedContent, auth *wire.FramedContentAuthData, pad PaddingFunc, r io.Reader) (*wire.PrivateMessage, error) {
	cs := keys.Suite
	if content.Sender.Type != wire.SenderMember {
		return nil, ErrNotMember
	}
	if r == nil {
		r = rand.Reader
	}
	pmc := &wire.PrivateMessageContent{
		ContentType:     content.ContentType,
		ApplicationData: content.ApplicationData,
		Proposal:        content.Proposal,
		Commit:          content.Commit,
		Auth:            *auth,
	}
	plain, err := codec.Marshal(pmc)
	if err != nil {
		return nil, err
	}
	if pad != nil {
		if n := pad(len(plain)); n > 0 {
			plain = append(plain, make([]byte, n)...)
		}
	}
	kn, err := keys.Tree.Next(treemath.LeafIndex(content.Sender.Index), ratchetFor(content.ContentType))
	if err != nil {
		return nil, err
	}
	defer clear(kn.Key)
	defer clear(kn.Nonce)
	var guard [4]byte
	if _, err := io.ReadFull(r, guard[:]); err != nil {
		return nil, fmt.Errorf("framing: reading randomness: %w", err)
	}
	aad := wire.PrivateContentAAD(content.GroupID, content.Epoch, content.ContentType, content.AuthenticatedData)
	ct, err := cs.Seal(nil, kn.Key, applyReuseGuard(kn.Nonce, guard), aad, plain)
	clear(plain)
	if err != nil {
		return nil, err
	}
	sd := wire.SenderData{LeafIndex: content.Sender.Index, Generation: kn.Generation, ReuseGuard: guard}
	sdKey, sdNonce, err := SenderDataKeyNonce(cs, keys.SenderDataSecret, ct)
	if err != nil {
		return nil, err
	}
	esd, err := cs.Seal(nil, sdKey, sdNonce, wire.SenderDataAAD(content.GroupID, content.Epoch, content.ContentType), codec.MustMarshal(&sd))
	if err != nil {
		return nil, err
	}
	return &wire.PrivateMessage{
		GroupID:             content.GroupID,
		Epoch:               content.Epoch,
		ContentType:         content.ContentType,
		AuthenticatedData:   content.AuthenticatedData,
		EncryptedSenderData: esd,
		Ciphertext:          ct,
	}, nil
}

// DecryptSenderData decrypts the sender data of a PrivateMessage (§6.3.2).
func DecryptSenderData(cs suite.CipherSuite, senderDataSecret []byte, pm *wire.PrivateMessage) (*wire.SenderData, error) {
	key, nonce, err := SenderDataKeyNonce(cs, senderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, err
	}
	plain, err := cs.Open(nil, key, nonce, wire.SenderDataAAD(pm.GroupID, pm.Epoch, pm.ContentType), pm.EncryptedSenderData)
	if err != nil {
		return nil, ErrSenderDataDecryption
	}
	var sd wire.SenderData
	if err := codec.Unmarshal(plain, &sd); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedSenderData, err)
	}
	return &sd, nil
}

// DecryptPrivateMessage decrypts a PrivateMessage (§6.3). checkSender, if
// not nil, is called with the sender's leaf index before any ratchet key
// is touched; it should reject leaves that are blank or out of range.
// verify, if not nil, is called on the decrypted content (to check its
// signature) before the sender's key is consumed: the key is used up only
// by a message that decrypts and verifies, so a forgery cannot burn it.
func DecryptPrivateMessage(keys *EpochKeys, pm *wire.PrivateMessage, checkSender func(leaf uint32) error, verify func(*wire.AuthenticatedContent) error) (*wire.AuthenticatedContent, error) {
	cs := keys.Suite
	sd, err := DecryptSenderData(cs, keys.SenderDataSecret, pm)
	if err != nil {
		return nil, err
	}
	if checkSender != nil {
		if err := checkSender(sd.LeafIndex); err != nil {
			return nil, err
		}
	}
	aad := wire.PrivateContentAAD(pm.GroupID, pm.Epoch, pm.ContentType, pm.AuthenticatedData)
	var ac *wire.AuthenticatedContent
	err = keys.Tree.Open(treemath.LeafIndex(sd.LeafIndex), ratchetFor(pm.ContentType), sd.Generation, func(key, nonce []byte) error {
		plain, err := cs.Open(nil, key, applyReuseGuard(nonce, sd.ReuseGuard), aad, pm.Ciphertext)
		if err != nil {
			return ErrContentDecryption
		}
		pmc := wire.PrivateMessageContent{ContentType: pm.ContentType}
		s := cryptobyte.String(plain)
		if !pmc.UnmarshalMLS(&s) || !s.Empty() {
			return ErrMalformedContent
		}
		ac = &wire.AuthenticatedContent{
			WireFormat: wire.WireFormatPrivateMessage,
			Content: wire.FramedContent{
				GroupID:           pm.GroupID,
				Epoch:             pm.Epoch,
				Sender:            wire.MemberSender(sd.LeafIndex),
				AuthenticatedData: pm.AuthenticatedData,
				ContentType:       pm.ContentType,
				ApplicationData:   pmc.ApplicationData,
				Proposal:          pmc.Proposal,
				Commit:            pmc.Commit,
			},
			Auth: pmc.Auth,
		}
		if verify != nil {
			return verify(ac)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ac, nil
}
