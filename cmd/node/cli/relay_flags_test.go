package cli

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRelayFlagTakesListsAndRepeats(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var relays listFlag
	fs.Var(&relays, "relay", "")
	if err := fs.Parse([]string{"--relay", "a, b", "--relay", "c", "--relay", ""}); err != nil {
		t.Fatal(err)
	}
	if got, want := []string(relays), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("--relay a,b --relay c: %q, want %q", got, want)
	}
}

// 'parley run' takes --relay-service and --relay, and refuses a relay
// address without a peer ID before it opens anything.
func TestRunWithRelayFlags(t *testing.T) {
	noTerminal(t)
	dir := filepath.Join(t.TempDir(), "node")
	if r := runParley(context.Background(), "init", "--name", "alice", "--data", dir, "--key-file"); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"run", "--data", dir, "--relay", "/ip4/127.0.0.1/tcp/9"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "--relay") {
		t.Errorf("--relay without /p2p/: exit %d, %q", code, errOut.String())
	}
	// On loopback, where nothing listens: the daemon dials it and fails.
	relay := "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWJ7nS2dWzK2Cdo4z4Gb7XwVQ9ZkR3Jr1bYQ5uVgE8Ttq1"
	stop := runDaemon(t, "--data", dir, "--relay-service", "--relay", relay+","+relay)
	waitSocket(t, dir)
	if code, stderr := stop(); code != 0 {
		t.Errorf("run with --relay-service --relay: exit %d, %q", code, stderr)
	}
}

func TestRelayAddressesOfOneRelayMakeOneRelay(t *testing.T) {
	const id = "12D3KooWJ7nS2dWzK2Cdo4z4Gb7XwVQ9ZkR3Jr1bYQ5uVgE8Ttq1"
	infos, err := relayInfos([]string{"/ip4/127.0.0.1/tcp/9/p2p/" + id, "/ip4/127.0.0.1/udp/9/quic-v1/p2p/" + id})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].ID.String() != id || len(infos[0].Addrs) != 2 {
		t.Errorf("two addresses of one relay: %v, want one relay with both", infos)
	}
	for _, bad := range []string{"/ip4/127.0.0.1/tcp/9", "not an address", "/p2p/" + id + "x"} {
		if _, err := relayInfos([]string{bad}); err == nil {
			t.Errorf("relayInfos(%q): no error", bad)
		}
	}
}
