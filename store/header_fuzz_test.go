package store

import (
	"bytes"
	"testing"
)

// FuzzParseHeader: parsing never panics, and what parses re-marshals to the
// same bytes (no trailing or ignored bytes).
func FuzzParseHeader(f *testing.F) {
	for _, c := range []*config{{noEncryption: true}, {keyFile: "k"}, {passphrase: []byte("p"), kdf: cheapKDF}} {
		h := &header{mode: modePlain}
		switch {
		case c.keyFile != "":
			h = &header{mode: modeKeyFile, nonce: make([]byte, 24), sealed: make([]byte, 48)}
		case c.passphrase != nil:
			h = &header{mode: modePassphrase, kdf: cheapKDF, salt: make([]byte, saltLen), nonce: make([]byte, 24), sealed: make([]byte, 48)}
		}
		f.Add(h.marshal())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHeader(data)
		if err != nil {
			return
		}
		if got := h.marshal(); !bytes.Equal(got, data) {
			t.Fatalf("re-marshal of %x gave %x", data, got)
		}
	})
}
