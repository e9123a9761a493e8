package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTCPNeedsTheToken(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := api.NewServer(apitest.New(), logger)
	t.Cleanup(func() { s.Close() })
	addr, err := s.ListenTCP("127.0.0.1:0", testToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("right token", func(t *testing.T) {
		c, err := api.DialTCP(ctx, addr.String(), testToken)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Identity(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		_, err := api.DialTCP(ctx, addr.String(), strings.Repeat("x", len(testToken)))
		if !errors.Is(err, api.ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
	})

	t.Run("wrong token closes the connection", func(t *testing.T) {
		c := dialRaw(t, "tcp", addr.String())
		c.send(`{"id":1,"method":"auth","params":{"token":"guess"}}`)
		if r := c.recvResponse(); r.Error == nil || r.Error.Code != "unauthorized" {
			t.Fatalf("got %+v, want unauthorized", r)
		}
		c.send(`{"id":2,"method":"identity"}`)
		if line, err := c.r.ReadString('\n'); err == nil {
			t.Errorf("after a wrong token the server answered %q; want the connection closed", line)
		}
	})

	t.Run("no token", func(t *testing.T) {
		c := dialRaw(t, "tcp", addr.String())
		for i, method := range []string{"identity", "groups", "subscribe", "no_such_method"} {
			c.send(fmt.Sprintf(`{"id":%d,"method":%q}`, i+1, method))
			r := c.recvResponse()
			if r.Error == nil || r.Error.Code != "unauthorized" {
				t.Errorf("%s without the token: got %+v, want unauthorized", method, r)
			}
		}
		// The connection can still authenticate.
		c.send(`{"id":9,"method":"auth","params":{"token":"` + testToken + `"}}`)
		if r := c.recvResponse(); r.Error != nil {
			t.Fatalf("auth: %+v", r.Error)
		}
		c.send(`{"id":10,"method":"identity"}`)
		if r := c.recvResponse(); r.Error != nil || *r.ID != 10 {
			t.Fatalf("identity after auth: %+v", r)
		}
	})

	if strings.Contains(logs.String(), testToken) {
		t.Errorf("the token is in the logs:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "wrong token") {
		t.Errorf("no log line for the wrong token:\n%s", logs.String())
	}
}

func TestTCPIsLoopbackOnly(t *testing.T) {
	s := api.NewServer(apitest.New(), nil)
	t.Cleanup(func() { s.Close() })
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:0", "127.0.0.1"} {
		if _, err := s.ListenTCP(addr, testToken); err == nil {
			t.Errorf("ListenTCP(%q) accepted a non-loopback address", addr)
		}
		if _, err := api.DialTCP(context.Background(), addr, testToken); err == nil {
			t.Errorf("DialTCP(%q) accepted a non-loopback address", addr)
		}
	}
	if _, err := s.ListenTCP("127.0.0.1:0", "short"); err == nil {
		t.Error("ListenTCP accepted a 5-character token")
	}
	if _, err := s.ListenTCP("[::1]:0", testToken); err != nil && !strings.Contains(err.Error(), "cannot assign") {
		t.Errorf("ListenTCP([::1]:0): %v", err)
	}
}

func TestNewTokenIsLongAndRandom(t *testing.T) {
	a, err := api.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := api.NewToken()
	if len(a) != 64 || a == b {
		t.Errorf("NewToken gave %q and %q", a, b)
	}
}

func TestUnixSocketTakesAnyAuth(t *testing.T) {
	_, path := serveUnix(t, apitest.New())
	c := dialRaw(t, "unix", path)
	c.send(`{"id":1,"method":"auth","params":{"token":"anything"}}`)
	if r := c.recvResponse(); r.Error != nil {
		t.Fatalf("auth on the unix socket: %+v", r.Error)
	}
}
