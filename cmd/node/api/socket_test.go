package api_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

func TestSocketIsOwnerOnly(t *testing.T) {
	_, path := serveUnix(t, apitest.New())
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("%s is %v, want a socket", path, fi.Mode())
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("socket mode %v, want 0600", got)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the socket directory holds %v, want the socket alone", entries)
	}
}

func TestSecondServerIsRefused(t *testing.T) {
	first, path := serveUnix(t, apitest.New())
	second := api.NewServer(apitest.New(), nil)
	defer second.Close()
	if err := second.ListenUnix(path); !errors.Is(err, api.ErrAlreadyRunning) {
		t.Fatalf("second server: got %v, want ErrAlreadyRunning", err)
	}
	// The first still serves, on the same file.
	c, err := api.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Identity(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Closing the refused server leaves the first's socket alone.
	second.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("after closing the refused server: %v", err)
	}
	first.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close the socket is still there: %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // a daemon that died: the file stays, nothing answers

	_, err = api.Dial(context.Background(), path)
	if !errors.Is(err, api.ErrNotRunning) {
		t.Fatalf("Dial to a stale socket: got %v, want ErrNotRunning", err)
	}

	s := api.NewServer(apitest.New(), nil)
	defer s.Close()
	if err := s.ListenUnix(path); err != nil {
		t.Fatalf("ListenUnix over a stale socket: %v", err)
	}
	c, err := api.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Identity(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestOtherFileIsNotReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := api.NewServer(apitest.New(), nil)
	defer s.Close()
	if err := s.ListenUnix(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("ListenUnix over a regular file: got %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "precious" {
		t.Error("the file was changed")
	}
}

func TestDialWithoutDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.sock")
	_, err := api.Dial(context.Background(), path)
	if !errors.Is(err, api.ErrNotRunning) {
		t.Fatalf("got %v, want ErrNotRunning", err)
	}
	want := "parley daemon is not running (no socket at " + path + "); start it with 'parley run'"
	if err.Error() != want {
		t.Errorf("got %q\nwant %q", err, want)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := api.DialTCP(context.Background(), addr, testToken); !errors.Is(err, api.ErrNotRunning) {
		t.Errorf("DialTCP to a closed port: got %v, want ErrNotRunning", err)
	}
}

func TestSocketPathTooLong(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("d", 120), "parley.sock")
	s := api.NewServer(apitest.New(), nil)
	defer s.Close()
	if err := s.ListenUnix(path); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("got %v, want a path-too-long error", err)
	}
}
