package main

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/wire"
)

// serveWith runs the command with args (on a free port) until the test
// ends and returns a client of it.
func serveWith(t *testing.T, args ...string) mlsclient.MLSClientClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-port", "0"}, args...), pw)
		pw.Close()
	}()
	addrRE := regexp.MustCompile(`addr=(\S+)`)
	lines := bufio.NewScanner(pr)
	var addr string
	for addr == "" && lines.Scan() {
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("run %q: no address logged (%v)", args, <-done)
	}
	go io.Copy(io.Discard, pr)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run %q after cancel: %v", args, err)
		}
	})
	return mlsclient.NewMLSClientClient(conn)
}

// TestPaddingFlagPadsPrivateMessages: -padding none sends PrivateMessage
// content unpadded, -padding N pads it to a multiple of N bytes, and
// without the flag it is padded to 32 as before.
func TestPaddingFlagPadsPrivateMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	protected := func(args ...string) int {
		t.Helper()
		c := serveWith(t, args...)
		g, err := c.CreateGroup(ctx, &mlsclient.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 1, Identity: []byte("alice")})
		if err != nil {
			t.Fatal(err)
		}
		ct, err := c.Protect(ctx, &mlsclient.ProtectRequest{StateId: g.StateId, Plaintext: []byte("hello")})
		if err != nil {
			t.Fatal(err)
		}
		return len(ct.Ciphertext)
	}
	none, def, block32, block4096 := protected("-padding", "none"), protected(), protected("-padding", "32"), protected("-padding", "4096")
	if def != block32 {
		t.Errorf("without -padding: %d bytes, -padding 32: %d; want the same", def, block32)
	}
	if !(none < def && def < none+32) {
		t.Errorf("-padding none: %d bytes, default: %d; want the default padded by less than 32", none, def)
	}
	if block4096 < 4096 || block4096 > none+4096 {
		t.Errorf("-padding 4096: %d bytes (unpadded %d)", block4096, none)
	}
}

func TestPaddingFlagRejectsBadValues(t *testing.T) {
	for _, p := range []string{"", "0", "-1", "x", "65537", "None"} {
		if err := run(context.Background(), []string{"-port", "0", "-padding", p}, io.Discard); err == nil {
			t.Errorf("-padding %q: no error", p)
		}
	}
	for _, tt := range []struct {
		arg        string
		len, wantN int
	}{
		{"none", 5, 0}, {"none", 0, 0}, {"1", 5, 0}, {"16", 5, 11}, {"16", 32, 0}, {"65536", 1, 65535},
	} {
		pad, err := parsePadding(tt.arg)
		if err != nil {
			t.Fatalf("-padding %s: %v", tt.arg, err)
		}
		if got := pad(tt.len); got != tt.wantN {
			t.Errorf("-padding %s of %d bytes: %d, want %d", tt.arg, tt.len, got, tt.wantN)
		}
	}
}

// TestGreaseIsOnUnlessTurnedOff: the KeyPackages the server makes carry
// GREASE values (RFC 9420 §13.5) in their capabilities, and none with
// -grease=false.
func TestGreaseIsOnUnlessTurnedOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	greased := func(args ...string) bool {
		t.Helper()
		c := serveWith(t, args...)
		r, err := c.CreateKeyPackage(ctx, &mlsclient.CreateKeyPackageRequest{CipherSuite: 1, Identity: []byte("bob")})
		if err != nil {
			t.Fatal(err)
		}
		var m wire.MLSMessage
		if err := codec.Unmarshal(r.KeyPackage, &m); err != nil || m.KeyPackage == nil {
			t.Fatalf("not a KeyPackage: %v", err)
		}
		caps := m.KeyPackage.LeafNode.Capabilities
		var values []uint16
		for _, v := range caps.CipherSuites {
			values = append(values, uint16(v))
		}
		for _, v := range caps.Extensions {
			values = append(values, uint16(v))
		}
		for _, v := range caps.Proposals {
			values = append(values, uint16(v))
		}
		for _, v := range caps.Credentials {
			values = append(values, uint16(v))
		}
		for _, v := range values {
			if v&0x0f0f == 0x0a0a && v>>12 == v>>4&0xf { // 0x0A0A, 0x1A1A, ... 0xEAEA
				return true
			}
		}
		return false
	}
	if !greased() {
		t.Error("a KeyPackage without GREASE by default")
	}
	if greased("-grease=false") {
		t.Error("a KeyPackage with GREASE under -grease=false")
	}
}
