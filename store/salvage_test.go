package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var (
	salvageGroup   = []byte("group-state")
	salvageHistory = []byte("Hgroup-state")
)

// makeSalvageSource builds a closed, encrypted store with several tables
// and a memtable log: an identity, peers, settings of a kept and a dropped
// scope, KeyPackages, a group's ordering state and its history log.
func makeSalvageSource(t *testing.T) (dir, keyFile string) {
	t.Helper()
	dir = t.TempDir()
	keyFile = filepath.Join(t.TempDir(), "key")
	s, err := Open(dir, WithKeyFile(keyFile), WithGCInterval(0), withSizes(1<<20, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.PutIdentity("node", []byte("the identity"))
	b.PutKeyPackage([]byte("kp-ref"), []byte("kp private key"))
	b.PutSetting("invite", "token", []byte("one-use"))
	mustWrite(t, s, b)
	if err := s.PutPeer(ctx, "peer-1", []byte("peer record")); err != nil {
		t.Fatal(err)
	}
	for r := range 600 {
		b := s.NewBatch()
		b.PutEpoch(salvageGroup, fmt.Appendf(nil, "epoch-%d", r%8), uint64(r), bytes.Repeat([]byte{byte(r)}, 1500))
		b.SetHead(salvageGroup, fmt.Appendf(nil, "head-%d", r))
		b.AppendLog(salvageGroup, LogEntry{ID: fmt.Appendf(nil, "env-%d", r), Envelope: bytes.Repeat([]byte("e"), 300), Result: []byte("epoch")})
		b.AppendLog(salvageHistory, LogEntry{ID: fmt.Appendf(nil, "msg-%d", r), Envelope: fmt.Appendf(nil, "message %d", r), Result: []byte("f")})
		b.PutSetting("contact", fmt.Sprintf("c-%03d", r), fmt.Appendf(nil, "contact %d", r))
		mustWrite(t, s, b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, keyFile
}

var salvageTestPlan = SalvagePlan{
	Identity: "node",
	Settings: []string{"contact"},
	Logs:     func(g []byte) bool { return len(g) > 0 && g[0] == 'H' },
}

func tableFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func flip(t *testing.T, path string, at func(size int) int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := max(0, min(at(len(data)), len(data)-64))
	for i := off; i < off+64 && i < len(data); i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSalvageOfDamagedTables(t *testing.T) {
	src, keyFile := makeSalvageSource(t)
	if n := len(tableFiles(t, src)); n < 2 {
		t.Fatalf("the source store has %d tables, want several", n)
	}
	dataBlock := func(size int) int { return 200 }
	footer := func(size int) int { return size - 100 }
	cases := []struct {
		name string
		// damage damages the copy in dir.
		damage func(t *testing.T, dir string)
		// mustSalvage: the identity is in no damaged part, so Salvage
		// must succeed.
		mustSalvage bool
	}{
		{"a data block of the last table", func(t *testing.T, dir string) {
			ts := tableFiles(t, dir)
			flip(t, ts[len(ts)-1], dataBlock)
		}, true},
		{"a data block in the middle of the first table", func(t *testing.T, dir string) {
			flip(t, tableFiles(t, dir)[0], func(size int) int { return size / 2 })
		}, false},
		{"the index and footer of the first table", func(t *testing.T, dir string) {
			flip(t, tableFiles(t, dir)[0], footer)
		}, false},
		{"a data block of every table", func(t *testing.T, dir string) {
			for _, f := range tableFiles(t, dir) {
				flip(t, f, dataBlock)
			}
		}, false},
		{"the index of every table", func(t *testing.T, dir string) {
			for _, f := range tableFiles(t, dir) {
				flip(t, f, footer)
			}
		}, false},
		{"the MANIFEST and a table", func(t *testing.T, dir string) {
			flip(t, filepath.Join(dir, "MANIFEST"), func(size int) int { return size / 2 })
			flip(t, tableFiles(t, dir)[0], dataBlock)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "store")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			copyDir(t, src, dir)
			tc.damage(t, dir)
			before := dirDigest(t, dir)
			if s, err := Open(dir, WithKeyFile(keyFile), WithGCInterval(0)); err == nil {
				s.Close()
				t.Skip("the damage went unnoticed by Open (nothing to salvage)")
			} else {
				t.Logf("Open: %v", err)
			}
			s, rep, err := Salvage(dir, salvageTestPlan, WithKeyFile(keyFile), WithGCInterval(0))
			if err != nil {
				t.Logf("Salvage: %v", err)
				if tc.mustSalvage {
					t.Fatalf("Salvage failed: %v", err)
				}
				if !sameDigest(before, dirDigest(t, dir)) {
					t.Errorf("a failed Salvage changed the damaged store")
				}
				if rep != nil && errors.Is(err, ErrIdentityLost) && !strings.Contains(err.Error(), dir) {
					t.Errorf("the error %q does not say where the damaged store is", err)
				}
				return
			}
			defer s.Close()
			t.Logf("report: %+v", *rep)
			if len(rep.Damaged) == 0 {
				t.Errorf("the report names no damaged table")
			}
			if !sameDigest(before, dirDigest(t, rep.MovedTo)) {
				t.Errorf("the damaged store at %s is not kept as it was", rep.MovedTo)
			}
			if got, err := s.Identity(ctx, "node"); err != nil || string(got) != "the identity" {
				t.Errorf("identity = %q, %v", got, err)
			}
			checkSalvaged(t, s)
		})
	}
}

// checkSalvaged checks that s holds nothing the plan leaves out, and that
// what it holds is what was written.
func checkSalvaged(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.KeyPackage(ctx, []byte("kp-ref")); !errors.Is(err, ErrNotFound) {
		t.Errorf("KeyPackage after salvage: %v, want ErrNotFound", err)
	}
	if _, err := s.Setting(ctx, "invite", "token"); !errors.Is(err, ErrNotFound) {
		t.Errorf("invite token after salvage: %v, want ErrNotFound", err)
	}
	if _, err := s.Head(ctx, salvageGroup); !errors.Is(err, ErrNotFound) {
		t.Errorf("group head after salvage: %v, want ErrNotFound", err)
	}
	if eps, err := s.Epochs(ctx, salvageGroup); err != nil || len(eps) != 0 {
		t.Errorf("epochs after salvage: %d, %v; want none", len(eps), err)
	}
	if log, err := s.Log(ctx, salvageGroup, 0, 0); err != nil || len(log) != 0 {
		t.Errorf("group log after salvage: %d entries, %v; want none", len(log), err)
	}
	contacts, err := s.Settings(ctx, "contact")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range contacts {
		var r int
		if _, err := fmt.Sscanf(k, "c-%d", &r); err != nil || string(v) != fmt.Sprintf("contact %d", r) {
			t.Errorf("contact %q = %q", k, v)
		}
	}
	hist, err := s.Log(ctx, salvageHistory, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range hist {
		var r int
		if _, err := fmt.Sscanf(string(e.ID), "msg-%d", &r); err != nil || string(e.Envelope) != fmt.Sprintf("message %d", r) || string(e.Result) != "f" {
			t.Errorf("history entry %d = %q %q %q", i, e.ID, e.Envelope, e.Result)
		}
		if e.Seq != uint64(i+1) {
			t.Errorf("history entry %d has seq %d", i, e.Seq)
		}
	}
	t.Logf("kept %d contacts of 600, %d history entries of 600", len(contacts), len(hist))
}

func TestSalvageOfASoundStoreKeepsTheSafeRecords(t *testing.T) {
	src, keyFile := makeSalvageSource(t)
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	copyDir(t, src, dir)
	s, rep, err := Salvage(dir, salvageTestPlan, WithKeyFile(keyFile), WithGCInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rep.Unreadable != 0 || len(rep.Damaged) != 0 {
		t.Errorf("report of a sound store: %+v", *rep)
	}
	checkSalvaged(t, s)
	contacts, _ := s.Settings(ctx, "contact")
	hist, _ := s.Log(ctx, salvageHistory, 0, 0)
	peers, _ := s.Peers(ctx)
	if len(contacts) != 600 || len(hist) != 600 || len(peers) != 1 {
		t.Errorf("kept %d contacts, %d history entries, %d peers; want 600, 600, 1", len(contacts), len(hist), len(peers))
	}
}

func TestSalvageRefusesAWrongKeyWithoutTouchingTheStore(t *testing.T) {
	src, _ := makeSalvageSource(t)
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	copyDir(t, src, dir)
	before := dirDigest(t, dir)
	other := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(other, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Salvage(dir, salvageTestPlan, WithKeyFile(other)); !errors.Is(err, ErrWrongKeyFile) {
		t.Fatalf("Salvage with another key file: %v, want ErrWrongKeyFile", err)
	}
	if !sameDigest(before, dirDigest(t, dir)) {
		t.Errorf("the store changed")
	}
}

func TestFinishSalvagePutsAnInterruptedSalvageInPlace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if done, err := FinishSalvage(dir); done || err != nil {
		t.Fatalf("FinishSalvage with nothing to finish: %v, %v", done, err)
	}
	s := openPlain(t, dir+".salvage")
	b := s.NewBatch()
	b.PutIdentity("node", []byte("the identity"))
	mustWrite(t, s, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if done, err := FinishSalvage(dir); !done || err != nil {
		t.Fatalf("FinishSalvage: %v, %v; want it done", done, err)
	}
	s = openPlain(t, dir)
	defer s.Close()
	if got, err := s.Identity(ctx, "node"); err != nil || string(got) != "the identity" {
		t.Errorf("identity = %q, %v", got, err)
	}
	if done, err := FinishSalvage(dir); done || err != nil {
		t.Errorf("FinishSalvage of a store in place: %v, %v; want nothing done", done, err)
	}
}

func TestSalvagedStoreIsSealedByTheSamePassphrase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := openPassphrase(t, dir, "secret")
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.PutIdentity("node", []byte("the identity"))
	mustWrite(t, s, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = openPassphrase(t, dir, "secret"); err != nil {
		t.Fatal(err)
	}
	b = s.NewBatch()
	for i := range 50 {
		b.PutSetting("contact", fmt.Sprint(i), bytes.Repeat([]byte("code"), 20))
	}
	mustWrite(t, s, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ts := tableFiles(t, dir)
	flip(t, ts[len(ts)-1], func(int) int { return 0 }) // the first data block of the second table
	if _, err := openPassphrase(t, dir, "secret"); !errors.Is(err, ErrDamagedTable) {
		t.Fatalf("Open of the damaged store: %v, want ErrDamagedTable", err)
	}
	s, rep, err := Salvage(dir, salvageTestPlan, WithPassphrase([]byte("secret")), withKDF(cheapKDF), WithGCInterval(0))
	if err != nil {
		t.Fatalf("Salvage: %v (report %+v)", err, rep)
	}
	if p := s.Protection(); p != SealedByPassphrase {
		t.Errorf("the salvaged store is %v, want sealed by the passphrase", p)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openPassphrase(t, dir, "wrong"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("the salvaged store opened with another passphrase: %v", err)
	}
	s, err = openPassphrase(t, dir, "secret")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Identity(ctx, "node"); err != nil || string(got) != "the identity" {
		t.Errorf("identity = %q, %v", got, err)
	}
}

// TestSalvageNeverPanics damages each table of the source at many places,
// one place at a time: Salvage either succeeds, with what it keeps intact,
// or fails with an error that leaves the damaged store as it was.
func TestSalvageNeverPanics(t *testing.T) {
	if testing.Short() {
		t.Skip("damages many copies of a store")
	}
	src, keyFile := makeSalvageSource(t)
	for ti, table := range tableFiles(t, src) {
		for _, at := range []float64{0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95, 0.99} {
			t.Run(fmt.Sprintf("table%d/at%.2f", ti, at), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "store")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				copyDir(t, src, dir)
				flip(t, filepath.Join(dir, filepath.Base(table)), func(size int) int { return int(at * float64(size)) })
				if s, err := Open(dir, WithKeyFile(keyFile), WithGCInterval(0)); err == nil {
					s.Close()
					t.Skip("the damage went unnoticed by Open (nothing to salvage)")
				} else if !errors.Is(err, ErrDamagedTable) {
					t.Errorf("Open: %v, want ErrDamagedTable (what makes a node salvage)", err)
				}
				before := dirDigest(t, dir)
				s, rep, err := Salvage(dir, salvageTestPlan, WithKeyFile(keyFile), WithGCInterval(0))
				if err != nil {
					if !sameDigest(before, dirDigest(t, dir)) {
						t.Errorf("a failed Salvage (%v) changed the damaged store", err)
					}
					t.Logf("Salvage: %v", err)
					return
				}
				defer s.Close()
				if !sameDigest(before, dirDigest(t, rep.MovedTo)) {
					t.Errorf("the damaged store is not kept as it was")
				}
				checkSalvaged(t, s)
			})
		}
	}
}
