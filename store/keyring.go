package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// The header file PARLEY marks a directory as a Parley store and holds the
// badger data key, sealed with XChaCha20-Poly1305 under a key-encryption key
// (KEK) from the key file or from argon2id(passphrase, salt). Format:
//
//	magic      [8]byte "PARLEYDB"
//	version    uint8   1
//	mode       uint8   0 plain, 1 key file, 2 passphrase
//	mode 2:    time uint32, memory_kib uint32, threads uint8, salt<1..255>
//	mode 1, 2: nonce [24]byte, sealed_data_key<1..255>
//
// The additional data of the seal is every byte before the nonce, so the
// KDF parameters cannot be changed without failing the open. Trailing bytes
// are rejected.
const (
	headerFile    = "PARLEY"
	headerMagic   = "PARLEYDB"
	headerVersion = 1

	modePlain      = 0
	modeKeyFile    = 1
	modePassphrase = 2

	dataKeyLen = 32 // AES-256 in badger
	kekLen     = chacha20poly1305.KeySize
	saltLen    = 32
)

// kdfParams are argon2id parameters.
type kdfParams struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// defaultKDF follows the second recommended option of RFC 9106, section 4
// (t=3, m=64 MiB, p=4).
var defaultKDF = kdfParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// valid bounds parameters read from disk, so a damaged or hostile header
// cannot make Open allocate without limit or spin for hours.
func (p kdfParams) valid() bool {
	return p.Time >= 1 && p.Time <= 64 &&
		p.Threads >= 1 && p.Threads <= 64 &&
		p.MemoryKiB >= 8*uint32(p.Threads) && p.MemoryKiB <= 4<<20
}

type header struct {
	mode   uint8
	kdf    kdfParams
	salt   []byte
	nonce  []byte
	sealed []byte
}

func (h *header) prefix() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(headerMagic))
	b.AddUint8(headerVersion)
	b.AddUint8(h.mode)
	if h.mode == modePassphrase {
		b.AddUint32(h.kdf.Time)
		b.AddUint32(h.kdf.MemoryKiB)
		b.AddUint8(h.kdf.Threads)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.salt) })
	}
	return b.BytesOrPanic()
}

func (h *header) marshal() []byte {
	var b cryptobyte.Builder
	b.AddBytes(h.prefix())
	if h.mode != modePlain {
		b.AddBytes(h.nonce)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.sealed) })
	}
	return b.BytesOrPanic()
}

func parseHeader(data []byte) (*header, error) {
	bad := func(what string) error { return fmt.Errorf("%w: header file %s: %s", ErrNotStore, headerFile, what) }
	s := cryptobyte.String(data)
	var magic []byte
	var version uint8
	h := &header{}
	if !s.ReadBytes(&magic, len(headerMagic)) || string(magic) != headerMagic {
		return nil, bad("bad magic")
	}
	if !s.ReadUint8(&version) || !s.ReadUint8(&h.mode) {
		return nil, bad("truncated")
	}
	if version != headerVersion {
		return nil, bad(fmt.Sprintf("unknown version %d", version))
	}
	switch h.mode {
	case modePlain:
	case modeKeyFile:
	case modePassphrase:
		var salt cryptobyte.String
		if !s.ReadUint32(&h.kdf.Time) || !s.ReadUint32(&h.kdf.MemoryKiB) || !s.ReadUint8(&h.kdf.Threads) ||
			!s.ReadUint8LengthPrefixed(&salt) || len(salt) == 0 {
			return nil, bad("truncated")
		}
		if !h.kdf.valid() {
			return nil, bad("argon2id parameters out of bounds")
		}
		h.salt = append([]byte(nil), salt...)
	default:
		return nil, bad(fmt.Sprintf("unknown mode %d", h.mode))
	}
	if h.mode != modePlain {
		var sealed cryptobyte.String
		if !s.ReadBytes(&h.nonce, chacha20poly1305.NonceSizeX) || !s.ReadUint8LengthPrefixed(&sealed) {
			return nil, bad("truncated")
		}
		h.nonce = append([]byte(nil), h.nonce...)
		h.sealed = append([]byte(nil), sealed...)
	}
	if !s.Empty() {
		return nil, bad("trailing bytes")
	}
	return h, nil
}

// newHeader makes a header for a new store and the random data key it seals.
func newHeader(c *config, random io.Reader) (*header, []byte, error) {
	h := &header{mode: modePlain}
	switch {
	case c.noEncryption:
		return h, nil, nil
	case c.keyFile != "":
		h.mode = modeKeyFile
	default:
		h.mode = modePassphrase
		h.kdf = c.kdf
		if !h.kdf.valid() {
			return nil, nil, fmt.Errorf("%w: argon2id parameters out of bounds", ErrInvalidArgument)
		}
		h.salt = make([]byte, saltLen)
		if _, err := io.ReadFull(random, h.salt); err != nil {
			return nil, nil, fmt.Errorf("store: read random salt: %w", err)
		}
	}
	kek, err := h.kek(c, true)
	if err != nil {
		return nil, nil, err
	}
	defer clear(kek)
	dataKey := make([]byte, dataKeyLen)
	h.nonce = make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(random, dataKey); err != nil {
		return nil, nil, fmt.Errorf("store: read random data key: %w", err)
	}
	if _, err := io.ReadFull(random, h.nonce); err != nil {
		return nil, nil, fmt.Errorf("store: read random nonce: %w", err)
	}
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	h.sealed = aead.Seal(nil, h.nonce, dataKey, h.prefix())
	return h, dataKey, nil
}

// unlock checks that the options match the header's mode and returns the
// data key (nil for a plain store).
func (h *header) unlock(c *config) ([]byte, error) {
	switch {
	case h.mode == modePlain && !c.noEncryption:
		return nil, ErrNotEncrypted
	case h.mode != modePlain && c.noEncryption:
		return nil, ErrEncrypted
	case h.mode == modePlain:
		return nil, nil
	case h.mode == modeKeyFile && c.keyFile == "":
		return nil, fmt.Errorf("%w (%w)", ErrWrongPassphrase, ErrNeedsKeyFile)
	case h.mode == modePassphrase && c.keyFile != "":
		return nil, fmt.Errorf("%w (%w)", ErrWrongKeyFile, ErrNeedsPassphrase)
	}
	kek, err := h.kek(c, false)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	dataKey, err := aead.Open(nil, h.nonce, h.sealed, h.prefix())
	if err != nil {
		if h.mode == modeKeyFile {
			return nil, ErrWrongKeyFile
		}
		return nil, ErrWrongPassphrase
	}
	if len(dataKey) != dataKeyLen {
		return nil, fmt.Errorf("%w: header file %s: data key of %d bytes", ErrNotStore, headerFile, len(dataKey))
	}
	return dataKey, nil
}

// kek derives the key-encryption key. For a key file, create says whether a
// missing file may be created.
func (h *header) kek(c *config, create bool) ([]byte, error) {
	if h.mode == modeKeyFile {
		return loadKeyFile(c.keyFile, create)
	}
	return argon2.IDKey(c.passphrase, h.salt, h.kdf.Time, h.kdf.MemoryKiB, h.kdf.Threads, kekLen), nil
}

// loadKeyFile reads the 32-byte key file, creating it with a random key if
// it is missing and create is set.
func loadKeyFile(path string, create bool) ([]byte, error) {
	key, err := readKeyFile(path)
	if err == nil || !create || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, kekLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("store: read random key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: create key file: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: write key file: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return key, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != kekLen {
		return nil, fmt.Errorf("%w: %s is not a regular file of %d bytes", ErrBadKeyFile, path, kekLen)
	}
	if err := checkKeyFileMode(fi); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadKeyFile, path, err)
	}
	key := make([]byte, kekLen)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("store: key file: %w", err)
	}
	return key, nil
}

func readHeader(dir string) (*header, error) {
	data, err := os.ReadFile(filepath.Join(dir, headerFile))
	if err != nil {
		return nil, fmt.Errorf("store: read header: %w", err)
	}
	return parseHeader(data)
}

// writeHeader writes the header file atomically: a temporary file, synced,
// renamed into place, and the directory synced.
func writeHeader(dir string, h *header) error {
	tmp := filepath.Join(dir, headerFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: write header: %w", err)
	}
	if _, err := f.Write(h.marshal()); err != nil {
		f.Close()
		return fmt.Errorf("store: write header: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("store: write header: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: write header: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, headerFile)); err != nil {
		return fmt.Errorf("store: write header: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync directory: %w", err)
	}
	return nil
}
