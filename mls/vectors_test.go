package mls_test

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The official MLS test vectors (mlswg/mls-implementations) are kept gzipped
// in testdata/vectors. MLS_TESTVECTORS names another directory to read them
// from instead (plain .json or .json.gz); every passive-client*.json found
// there is run as well.
const repoVectors = "testdata/vectors"

func vectorDir() string { return os.Getenv("MLS_TESTVECTORS") }

// readVectorFile returns the contents of the named vector file, from
// MLS_TESTVECTORS when set and holding it, otherwise from the repository.
func readVectorFile(t *testing.T, name string) []byte {
	t.Helper()
	var candidates []string
	if d := vectorDir(); d != "" {
		candidates = append(candidates, filepath.Join(d, name), filepath.Join(d, name+".gz"))
	}
	candidates = append(candidates, filepath.Join(repoVectors, name+".gz"))
	for _, p := range candidates {
		raw, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("gunzip %s: %v", p, err)
			}
			raw, err = io.ReadAll(zr)
			if err != nil {
				t.Fatalf("gunzip %s: %v", p, err)
			}
		}
		return raw
	}
	t.Fatalf("vector file %s not found (looked in %v)", name, candidates)
	return nil
}

// vectorFiles lists the vector files whose names start with prefix: those
// in MLS_TESTVECTORS when set, and those kept in the repository.
func vectorFiles(t *testing.T, prefix string) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, d := range []string{vectorDir(), repoVectors} {
		if d == "" {
			continue
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatalf("listing %s: %v", d, err)
		}
		for _, e := range entries {
			name := strings.TrimSuffix(e.Name(), ".gz")
			if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ".json") {
				seen[name] = true
			}
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// forEachVector decodes the JSON array in the named file and runs f on each
// element as a parallel subtest, then prints the file's summary line.
func forEachVector[T any](t *testing.T, file string, f func(t *testing.T, v *T)) {
	t.Helper()
	var vs []T
	if err := json.Unmarshal(readVectorFile(t, file), &vs); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	type result struct{ failed, skipped bool }
	results := make([]result, len(vs))
	t.Run("vectors", func(t *testing.T) {
		for i := range vs {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				defer func() { results[i] = result{failed: t.Failed(), skipped: t.Skipped()} }()
				f(t, &vs[i])
			})
		}
	})
	var passed, failed, skipped int
	for _, r := range results {
		switch {
		case r.failed:
			failed++
		case r.skipped:
			skipped++
		default:
			passed++
		}
	}
	if len(vs) == 0 {
		t.Errorf("%s holds no vectors", file)
	}
	fmt.Printf("vectors %s: %d passed, %d failed, %d skipped\n", file, passed, failed, skipped)
}

// hexBytes is a hex-encoded JSON string (null decodes to nil).
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}
