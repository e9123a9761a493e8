package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// makeDamageSource builds a closed, encrypted store with records in every
// kind of badger file: tables (.sst, flushed on close), value log (.vlog,
// for large snapshots), MANIFEST, KEYREGISTRY, DISCARD and the header.
func makeDamageSource(t *testing.T) (dir, keyFile string) {
	dir = t.TempDir()
	keyFile = filepath.Join(t.TempDir(), "key")
	s, err := Open(dir, WithKeyFile(keyFile), WithGCInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	g := []byte("group")
	for r := range 20 {
		b := s.NewBatch()
		b.PutEpoch(g, fmt.Appendf(nil, "epoch-%d", r), uint64(r), bytes.Repeat([]byte{byte(r)}, 3*valueThreshold))
		b.AppendLog(g, LogEntry{ID: fmt.Appendf(nil, "env-%d", r), Envelope: bytes.Repeat([]byte("e"), 200)})
		b.SetHead(g, fmt.Appendf(nil, "head-%d", r))
		mustWrite(t, s, b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, keyFile
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.OpenFile(filepath.Join(to, e.Name()), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		dst.Close()
	}
}

// readAll reads every record of the damage source, as a node would after
// opening, and reports a difference from what was written as errSilentLoss.
func readAll(s *Store) error {
	g := []byte("group")
	eps, err := s.Epochs(ctx, g)
	if err != nil {
		return err
	}
	if len(eps) != 20 {
		return fmt.Errorf("%w: %d epochs", errSilentLoss, len(eps))
	}
	for _, e := range eps {
		snap, _, err := s.Epoch(ctx, g, e.ID)
		if err != nil {
			return err
		}
		if !bytes.Equal(snap, bytes.Repeat([]byte{byte(e.Epoch)}, 3*valueThreshold)) {
			return fmt.Errorf("%w: snapshot of epoch %d", errSilentLoss, e.Epoch)
		}
	}
	log, err := s.Log(ctx, g, 0, 0)
	if err != nil {
		return err
	}
	if len(log) != 20 {
		return fmt.Errorf("%w: %d log entries", errSilentLoss, len(log))
	}
	h, err := s.Head(ctx, g)
	if errors.Is(err, ErrNotFound) || err == nil && string(h) != "head-19" {
		return fmt.Errorf("%w: head %q (%v)", errSilentLoss, h, err)
	}
	return err
}

var errSilentLoss = errors.New("records lost or changed without an error")

// knownSilentLoss lists the files whose damage badger cannot tell from a
// torn write at a crash: it cuts the file back and opens what remains.
var knownSilentLoss = map[string]bool{"MANIFEST": true}

// TestDamagedFilesGiveAnErrorNotAPanic damages each file of a closed store
// in several ways. Open (and reading everything, if Open succeeds) must
// return errors and never panic; an Open that fails must leave the other
// files as they were (badger may have created new, empty ones).
func TestDamagedFilesGiveAnErrorNotAPanic(t *testing.T) {
	src, keyFile := makeDamageSource(t)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	damages := []struct {
		name string
		do   func(data []byte) []byte
	}{
		{"truncated to half", func(d []byte) []byte { return d[:len(d)/2] }},
		{"truncated to 3 bytes", func(d []byte) []byte { return d[:min(3, len(d))] }},
		{"bytes flipped in the middle", func(d []byte) []byte {
			d = bytes.Clone(d)
			for i := len(d) / 2; i < len(d)/2+16 && i < len(d); i++ {
				d[i] ^= 0xff
			}
			return d
		}},
		{"bytes flipped at the start", func(d []byte) []byte {
			d = bytes.Clone(d)
			for i := 0; i < 16 && i < len(d); i++ {
				d[i] ^= 0x5a
			}
			return d
		}},
	}
	for _, name := range names {
		for _, dmg := range damages {
			t.Run(name+"/"+dmg.name, func(t *testing.T) {
				dir := t.TempDir()
				copyDir(t, src, dir)
				path := filepath.Join(dir, name)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, dmg.do(data), 0o600); err != nil {
					t.Fatal(err)
				}
				before := dirDigest(t, dir)
				delete(before, name)
				s, err := Open(dir, WithKeyFile(keyFile), WithGCInterval(0))
				if err != nil {
					after := dirDigest(t, dir)
					for f, sum := range before {
						if after[f] != sum {
							t.Errorf("Open failed (%v) but changed or removed %s", err, f)
						}
					}
					t.Logf("Open: %v", err)
					return
				}
				rerr := readAll(s)
				if err := s.Close(); err != nil && rerr == nil {
					rerr = err
				}
				switch {
				case errors.Is(rerr, errSilentLoss) && knownSilentLoss[name]:
					t.Logf("KNOWN LIMITATION (see README): %v", rerr)
				case errors.Is(rerr, errSilentLoss):
					t.Errorf("Open succeeded and reading gave no error: %v", rerr)
				default:
					t.Logf("Open succeeded; reading everything: %v", rerr)
				}
			})
		}
	}
}
