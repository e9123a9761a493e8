package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

const testToken = "0123456789abcdef0123456789abcdef"

// transport is one way to reach a server: how to start it and dial it.
type transport struct {
	name string
	// serve starts s and returns a dial function for it.
	serve func(t *testing.T, s *api.Server) func(ctx context.Context) (*api.Client, error)
}

var transports = []transport{
	{"unix", func(t *testing.T, s *api.Server) func(context.Context) (*api.Client, error) {
		path := filepath.Join(t.TempDir(), "parley.sock")
		if err := s.ListenUnix(path); err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context) (*api.Client, error) { return api.Dial(ctx, path) }
	}},
	{"tcp", func(t *testing.T, s *api.Server) func(context.Context) (*api.Client, error) {
		addr, err := s.ListenTCP("127.0.0.1:0", testToken)
		if err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context) (*api.Client, error) { return api.DialTCP(ctx, addr.String(), testToken) }
	}},
}

// serveFake serves a fresh fake backend over tr and returns it with a
// connected client; both are closed when the test ends.
func serveFake(t *testing.T, tr transport) (*apitest.Backend, *api.Client) {
	t.Helper()
	b := apitest.New()
	s := api.NewServer(b, nil)
	t.Cleanup(func() { s.Close() })
	dial := tr.serve(t, s)
	c, err := dial(context.Background())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return b, c
}

// serveUnix serves b on a unix socket and returns its path.
func serveUnix(t *testing.T, b api.Backend) (*api.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "parley.sock")
	s := api.NewServer(b, nil)
	if err := s.ListenUnix(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// rawConn is a bare protocol connection, as a program in another
// language would use.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t *testing.T, network, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawConn) send(line string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads one line, failing the test after 5 seconds.
func (c *rawConn) recv() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, line)
	}
	return line[:len(line)-1]
}

// rawResponse is a response line decoded loosely.
type rawResponse struct {
	ID     *uint64         `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *api.Error      `json:"error"`
	Event  *api.Event      `json:"event"`
}

func (c *rawConn) recvResponse() rawResponse {
	c.t.Helper()
	line := c.recv()
	var r rawResponse
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		c.t.Fatalf("response %q: %v", line, err)
	}
	return r
}

// waitFor waits up to 5 seconds for cond to hold.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// nextEvent returns the next event of ch, failing after 5 seconds.
func nextEvent(t *testing.T, ch <-chan api.Event) api.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event stream closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event in 5s")
	}
	panic("unreachable")
}
