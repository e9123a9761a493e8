package api_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

func TestEventStream(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			b, c := serveFake(t, tr)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			g, err := c.CreateGroup(ctx, "friends")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateGroup(ctx, "other"); err != nil {
				t.Fatal(err)
			}
			all, err := c.Subscribe(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			friends, err := c.Subscribe(ctx, "friends")
			if err != nil {
				t.Fatal(err)
			}

			if _, err := c.Send(ctx, "other", "elsewhere"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.AddContact(ctx, apitest.ContactPrefix+"bob", ""); err != nil {
				t.Fatal(err)
			}
			if err := c.Invite(ctx, "friends", "bob"); err != nil {
				t.Fatal(err)
			}
			id, err := c.Send(ctx, "friends", "hi bob")
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Finalize("friends"); err != nil {
				t.Fatal(err)
			}

			ev := nextEvent(t, all)
			if ev.Type != api.EventMessage || ev.Message.Text != "elsewhere" {
				t.Errorf("first event of all: %+v", ev)
			}
			for _, ch := range []<-chan api.Event{all, friends} {
				ev := nextEvent(t, ch)
				if ev.Type != api.EventMembership || ev.Group != g.ID || ev.Membership.Added[0] != "bob" || ev.Membership.Epoch != 1 {
					t.Errorf("membership event: %+v", ev)
				}
				ev = nextEvent(t, ch)
				if ev.Type != api.EventMessage || ev.Message.ID != id || ev.Message.Text != "hi bob" || !ev.Message.Own {
					t.Errorf("message event: %+v", ev)
				}
				ev = nextEvent(t, ch)
				if ev.Type != api.EventFinal || ev.Message.ID != id || !ev.Message.Final {
					t.Errorf("final event: %+v", ev)
				}
			}

			cancel()
			for _, ch := range []<-chan api.Event{all, friends} {
				for range ch {
				}
			}
			waitFor(t, "the server to end both subscriptions", func() bool { return b.Subscribers() == 0 })
		})
	}
}

func TestFileProgressEvents(t *testing.T) {
	_, c := serveFake(t, transports[0])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.CreateGroup(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, make([]byte, 3*apitest.FileChunk+5), 0o600); err != nil {
		t.Fatal(err)
	}
	events, err := c.Subscribe(ctx, "friends")
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.SendFile(ctx, "friends", path)
	if err != nil {
		t.Fatal(err)
	}
	var last int64 = -1
	for last != 3*apitest.FileChunk+5 {
		ev := nextEvent(t, events)
		if ev.Type != api.EventFile {
			continue
		}
		if ev.File.ID != id || ev.File.Name != "big.bin" || ev.File.Total != 3*apitest.FileChunk+5 || ev.File.Done <= last {
			t.Fatalf("progress event %+v after %d", ev.File, last)
		}
		last = ev.File.Done
	}
}

// TestEventStreamTakesNoRequests checks a subscribed connection answers
// further requests with bad_request but keeps streaming.
func TestEventStreamTakesNoRequests(t *testing.T) {
	b := apitest.New()
	_, path := serveUnix(t, b)
	if _, err := b.CreateGroup(context.Background(), "friends"); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, "unix", path)
	c.send(`{"id":1,"method":"subscribe","params":{"group":"friends"}}`)
	if got, want := c.recv(), `{"id":1,"result":{}}`; got != want {
		t.Fatalf("subscribe: got %s, want %s", got, want)
	}
	c.send(`{"id":2,"method":"groups"}`)
	if r := c.recvResponse(); r.Error == nil || r.Error.Code != "bad_request" || *r.ID != 2 {
		t.Fatalf("request on an event stream: got %+v, want bad_request", r)
	}
	if _, err := b.Deliver("friends", "bob", "still there?"); err != nil {
		t.Fatal(err)
	}
	if r := c.recvResponse(); r.Event == nil || r.Event.Message.Text != "still there?" || r.ID != nil {
		t.Fatalf("got %+v, want the message event", r)
	}
}

// TestClosingTheClientEndsItsStreams checks Client.Close ends the event
// streams it opened.
func TestClosingTheClientEndsItsStreams(t *testing.T) {
	b, c := serveFake(t, transports[0])
	events, err := c.Subscribe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for range events {
	}
	waitFor(t, "the subscription to end", func() bool { return b.Subscribers() == 0 })
	if _, err := c.Subscribe(context.Background(), ""); err == nil {
		t.Error("Subscribe on a closed client succeeded")
	}
}
