package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// cheapKDF keeps argon2id fast in tests; real stores use defaultKDF.
var cheapKDF = kdfParams{Time: 1, MemoryKiB: 64, Threads: 1}

// openPlain opens (or creates) an unencrypted store in dir and closes it
// when the test ends.
func openPlain(t testing.TB, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, append([]Option{WithoutEncryption(), WithGCInterval(0)}, opts...)...)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPassphrase(t testing.TB, dir, pass string, opts ...Option) (*Store, error) {
	t.Helper()
	s, err := Open(dir, append([]Option{WithPassphrase([]byte(pass)), withKDF(cheapKDF), WithGCInterval(0)}, opts...)...)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func mustWrite(t testing.TB, s *Store, batches ...*Batch) {
	t.Helper()
	if err := s.Write(context.Background(), batches...); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// dirDigest hashes every file of dir (name and content), to show that a
// refused Open changed nothing.
func dirDigest(t testing.TB, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

func sameDigest(a, b map[string][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestReopenWithPassphraseKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := openPassphrase(t, dir, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.PutIdentity("libp2p", []byte("secret key"))
	mustWrite(t, s, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = openPassphrase(t, dir, "correct horse")
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	got, err := s.Identity(context.Background(), "libp2p")
	if err != nil || string(got) != "secret key" {
		t.Fatalf("Identity = %q, %v; want %q", got, err, "secret key")
	}
}

func TestWrongPassphraseIsRefusedWithoutTouchingFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := openPassphrase(t, dir, "right")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := dirDigest(t, dir)
	if _, err := openPassphrase(t, dir, "wrong"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Open with wrong passphrase: got %v, want ErrWrongPassphrase", err)
	}
	if !sameDigest(before, dirDigest(t, dir)) {
		t.Fatal("a refused Open changed the directory")
	}
}

func TestKeyFileIsCreatedPrivateAndUnlocksTheStore(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "store.key")
	s, err := Open(dir, WithKeyFile(keyFile), WithGCInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", got)
	}
	if fi.Size() != kekLen {
		t.Errorf("key file size = %d, want %d", fi.Size(), kekLen)
	}
	s, err = Open(dir, WithKeyFile(keyFile), WithGCInterval(0))
	if err != nil {
		t.Fatalf("reopen with key file: %v", err)
	}
	s.Close()
}

func TestKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	keyDir := t.TempDir()
	keyFile := filepath.Join(keyDir, "store.key")
	s, err := Open(dir, WithKeyFile(keyFile), WithGCInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	other := filepath.Join(keyDir, "other.key")
	if err := os.WriteFile(other, bytes.Repeat([]byte{7}, kekLen), 0o600); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(keyDir, "loose.key")
	key, _ := os.ReadFile(keyFile)
	if err := os.WriteFile(loose, key, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(loose, 0o644)
	short := filepath.Join(keyDir, "short.key")
	if err := os.WriteFile(short, key[:16], 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts []Option
		want error
	}{
		{"another key file", []Option{WithKeyFile(other)}, ErrWrongKeyFile},
		{"key file readable by others", []Option{WithKeyFile(loose)}, ErrBadKeyFile},
		{"key file too short", []Option{WithKeyFile(short)}, ErrBadKeyFile},
		{"missing key file", []Option{WithKeyFile(filepath.Join(keyDir, "missing"))}, fs.ErrNotExist},
		{"passphrase instead of key file", []Option{WithPassphrase([]byte("x"))}, ErrWrongPassphrase},
		{"no encryption", []Option{WithoutEncryption()}, ErrEncrypted},
		{"no key at all", nil, ErrNoKey},
	}
	before := dirDigest(t, dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(dir, append(tt.opts, WithGCInterval(0))...)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: got %v, want %v", err, tt.want)
			}
		})
	}
	if !sameDigest(before, dirDigest(t, dir)) {
		t.Fatal("a refused Open changed the directory")
	}
	if _, err := os.Stat(filepath.Join(keyDir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Open of an existing store created a missing key file")
	}
}

func TestPlainStoreRefusesAKey(t *testing.T) {
	dir := t.TempDir()
	openPlain(t, dir).Close()
	if _, err := openPassphrase(t, dir, "x"); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("Open with passphrase of a plain store: got %v, want ErrNotEncrypted", err)
	}
}

func TestSecondOpenOfALockedDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	openPlain(t, dir)
	s, err := Open(dir, WithoutEncryption())
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
}

func TestForeignDirectoryIsRefused(t *testing.T) {
	t.Run("other files", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := dirDigest(t, dir)
		if _, err := Open(dir, WithoutEncryption()); !errors.Is(err, ErrNotStore) {
			t.Fatalf("Open: got %v, want ErrNotStore", err)
		}
		if !sameDigest(before, dirDigest(t, dir)) {
			t.Fatal("a refused Open changed the directory")
		}
	})
	t.Run("database without header", func(t *testing.T) {
		dir := t.TempDir()
		openPlain(t, dir).Close()
		if err := os.Remove(filepath.Join(dir, headerFile)); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, WithoutEncryption()); !errors.Is(err, ErrNotStore) {
			t.Fatalf("Open: got %v, want ErrNotStore", err)
		}
	})
	t.Run("damaged header", func(t *testing.T) {
		dir := t.TempDir()
		s, err := openPassphrase(t, dir, "x")
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		path := filepath.Join(dir, headerFile)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, damaged := range [][]byte{data[:len(data)-1], append(bytes.Clone(data), 0), data[:5]} {
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := openPassphrase(t, dir, "x"); !errors.Is(err, ErrNotStore) {
				t.Fatalf("Open with a header of %d bytes: got %v, want ErrNotStore", len(damaged), err)
			}
		}
		// A changed KDF parameter fails authentication of the sealed key.
		changed := bytes.Clone(data)
		changed[len(headerMagic)+2+3]++ // low byte of argon2id time
		if err := os.WriteFile(path, changed, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := openPassphrase(t, dir, "x"); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Open with a changed header: got %v, want ErrWrongPassphrase", err)
		}
	})
}

func TestEncryptedStoreHasNoPlaintextOnDisk(t *testing.T) {
	secret := []byte("VERY-RECOGNIZABLE-SECRET-0123456789")
	for _, tt := range []struct {
		name      string
		open      func(dir string) (*Store, error)
		wantFound bool
	}{
		{"plain (control)", func(dir string) (*Store, error) { return Open(dir, WithoutEncryption(), WithGCInterval(0)) }, true},
		{"passphrase", func(dir string) (*Store, error) {
			return Open(dir, WithPassphrase([]byte("p")), withKDF(cheapKDF), WithGCInterval(0))
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := tt.open(dir)
			if err != nil {
				t.Fatal(err)
			}
			b := s.NewBatch()
			b.PutKeyPackage([]byte("ref"), secret)                                                      // LSM tree
			b.PutEpoch([]byte("g"), []byte("e"), 1, bytes.Repeat(secret, 2*valueThreshold/len(secret))) // value log
			mustWrite(t, s, b)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			found := false
			filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if bytes.Contains(data, secret) {
					found = true
				}
				return nil
			})
			if found != tt.wantFound {
				t.Fatalf("secret found on disk = %v, want %v", found, tt.wantFound)
			}
		})
	}
}

// Badger v4.9.6 creates a log file and sizes it in two steps; a kill in
// between left a zero-length file that made every later open fail. The
// crash test found it.
func TestEmptyLogFileLeftByACrashDoesNotBlockOpen(t *testing.T) {
	dir := closedStoreWithHead(t)
	for _, name := range []string{"000099.vlog", "00099.mem"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	checkHead(t, openPlain(t, dir))
}

// closedStoreWithHead makes a plain store holding one head, closes it and
// returns its directory.
func closedStoreWithHead(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := openPlain(t, dir)
	b := s.NewBatch()
	b.SetHead([]byte("g"), []byte("h"))
	mustWrite(t, s, b)
	s.Close()
	return dir
}

// checkHead checks that the head of closedStoreWithHead reads back.
func checkHead(t *testing.T, s *Store) {
	t.Helper()
	if h, err := s.Head(ctx, []byte("g")); err != nil || string(h) != "h" {
		t.Fatalf("Head = %q, %v", h, err)
	}
}

// A flush or compaction writes its table file before it records the table
// in the manifest; a kill in between leaves a table file (here empty) the
// manifest does not list. The crash test found the preflight check calling
// it corrupt; badger deletes it while opening.
func TestUnlistedTableLeftByACrashDoesNotBlockOpen(t *testing.T) {
	dir := closedStoreWithHead(t)
	listed, ok := manifestTables(dir)
	if !ok || len(listed) == 0 {
		t.Fatalf("manifestTables = %v, %v; want the table flushed on close", listed, ok)
	}
	stray := filepath.Join(dir, "000999.sst")
	if err := os.WriteFile(stray, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	checkHead(t, openPlain(t, dir))
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("unlisted table still there: %v", err)
	}
}
