package cli

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/node"
	"github.com/parley-p2p/parley/ordering"
)

// runDemo starts three nodes on loopback, each with its own data
// directory, and walks through what Parley does: contacts, a group formed
// by invitations, messages, two members committing at the same moment and
// the fork resolved, every member on one epoch. It cleans up after itself.
func runDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "keep the data directories (their path is printed)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: parley demo [-keep]

Starts three Parley nodes (alice, bob, carol) on 127.0.0.1, each with its
own data directory, forms a group through invitations, has everyone talk,
makes two members commit at the same moment and shows the fork resolved.
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "parley-demo-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(root)
	}
	d := &nodeDemo{out: stdout, start: time.Now()}
	defer d.close()
	if err := d.run(ctx, root); err != nil {
		return err
	}
	if *keep {
		d.say("\nThe data directories are in %s (each store sealed by the key file beside it, like 'parley init --key-file').", root)
	}
	return nil
}

type nodeDemo struct {
	out   io.Writer
	start time.Time
	// winner is whose commit the latest rollback notice said won, and
	// on which epoch (see noteWinner).
	winner      string
	winnerEpoch string
	names       []string
	nodes       map[string]*node.Node
	mu          sync.Mutex
	wg          sync.WaitGroup
	stop        context.CancelFunc
}

func (d *nodeDemo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format+"\n", args...)
}

func (d *nodeDemo) close() {
	if d.stop != nil {
		d.stop()
	}
	for _, n := range d.nodes {
		n.Close()
	}
	d.wg.Wait()
}

// wonNotice matches the notice of a rollback (node/notices.go): "commits
// on epoch N: carol's won, yours was rolled back (1 epoch)".
var wonNotice = regexp.MustCompile(`^commits on epoch (\d+): (yours|\S+'s) won`)

// noteWinner keeps whose commit a rollback notice of node name says won:
// the latest such notice at any node is the fork choice they all end on.
func (d *nodeDemo) noteWinner(name, text string) {
	m := wonNotice.FindStringSubmatch(text)
	if m == nil {
		return
	}
	who := strings.TrimSuffix(m[2], "'s")
	if who == "yours" {
		who = name
	}
	d.mu.Lock()
	d.winner, d.winnerEpoch = who, m[1]
	d.mu.Unlock()
}

// watch prints the events of one node that the demo is about.
func (d *nodeDemo) watch(ctx context.Context, name string, n *node.Node) error {
	evs, err := n.Subscribe(ctx, "")
	if err != nil {
		return err
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for ev := range evs {
			switch ev.Type {
			case api.EventMessage:
				if !ev.Message.Own {
					d.say("    %-5s received %q from %s (epoch %d, provisional)", name, ev.Message.Text, ev.Message.Sender, ev.Message.Epoch)
				}
			case api.EventGroup:
				if ev.GroupInfo != nil && !ev.GroupInfo.Pending {
					d.say("    %-5s is in %q: epoch %d, %d member(s)", name, ev.GroupInfo.Name, ev.GroupInfo.Epoch, ev.GroupInfo.Members)
				}
			case api.EventNotice:
				d.say("    %-5s %s", name, ev.Text)
				d.noteWinner(name, ev.Text)
			case api.EventMembership:
				if len(ev.Membership.Added) > 0 {
					d.say("    %-5s sees %s join (epoch %d)", name, strings.Join(ev.Membership.Added, ", "), ev.Membership.Epoch)
				}
			}
		}
	}()
	return nil
}

func (d *nodeDemo) run(ctx context.Context, root string) error {
	ctx, d.stop = context.WithCancel(ctx)
	d.names = []string{"alice", "bob", "carol"}
	d.nodes = map[string]*node.Node{}
	d.say("Parley demo: three nodes on 127.0.0.1, each with its own data directory and store.\n")
	d.say("1. Start the nodes")
	for _, name := range d.names {
		dir := filepath.Join(root, name)
		// A throwaway store, sealed under a key file beside it as
		// 'parley init --key-file' does (no passphrase to ask): 'parley
		// run --data DIR' opens a kept one with no flag.
		if _, err := node.Init(dir, name, nil, nil); err != nil {
			return err
		}
		var log *slog.Logger
		if os.Getenv("PARLEY_DEMO_LOG") != "" {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
		}
		// alice commits as a node does (her invitations after a short
		// wait; others' proposals only after the backoff). bob and carol
		// commit their own changes at once, whatever their rank (a
		// negative delay): the demo wants exactly those two commits to
		// cross, every run, and alice to watch the fork, not join it.
		oc := ordering.Config{CommitDelay: 20 * time.Millisecond, HeadInterval: 50 * time.Millisecond}
		if name != "alice" {
			oc.CommitDelay, oc.CommitBackoff = -time.Second, time.Nanosecond
		}
		n, err := node.Open(ctx, node.Config{
			Logger: log,
			Dir:    dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, UpdateInterval: -1, TickInterval: 20 * time.Millisecond,
			Ordering: oc,
		})
		if err != nil {
			return err
		}
		d.nodes[name] = n
		id, _ := n.Identity(ctx)
		d.say("   %-5s peer %s, safety number %s", name, short(id.PeerID), id.Fingerprint)
	}
	alice, bob, carol := d.nodes["alice"], d.nodes["bob"], d.nodes["carol"]
	for _, name := range d.names {
		if err := d.watch(ctx, name, d.nodes[name]); err != nil {
			return err
		}
	}

	d.say("\n2. alice adds bob and carol from the contact codes they give her")
	for _, name := range []string{"bob", "carol"} {
		code, err := d.nodes[name].ContactCode(ctx)
		if err != nil {
			return err
		}
		if _, err := alice.AddContact(ctx, code, ""); err != nil {
			return err
		}
		d.say("   %s's code: %s… (%d characters: peer ID, addresses, a KeyPackage)", name, code[:40], len(code))
	}

	d.say("\n3. alice creates the group \"demo\" and invites them; each gets a Welcome over a direct stream")
	if _, err := alice.CreateGroup(ctx, "demo"); err != nil {
		return err
	}
	for _, name := range []string{"bob", "carol"} {
		if err := alice.Invite(ctx, "demo", name); err != nil {
			return err
		}
	}
	if err := d.waitAgree(ctx, 3, 30*time.Second); err != nil {
		return err
	}

	d.say("\n4. Everyone says something")
	for _, name := range d.names {
		text := map[string]string{"alice": "hello, both of you", "bob": "hi alice!", "carol": "hey, no server in sight"}[name]
		d.say("   %s sends %q", name, text)
		if _, err := d.nodes[name].Send(ctx, "demo", text); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err := d.waitMessages(ctx, 3, 20*time.Second); err != nil {
		return err
	}

	d.say("\n5. bob and carol refresh their keys at the same moment: competing commits on one epoch (a fork);\n   every member's fork choice keeps the same one, and the others roll back to it")
	before, _, _ := alice.EpochAuthenticator(ctx, "demo")
	errc := make(chan error, 2)
	for _, n := range []*node.Node{bob, carol} {
		go func() { errc <- n.UpdateKeys(ctx, "demo") }()
	}
	for range 2 {
		if err := <-errc; err != nil {
			return err
		}
	}
	if err := d.waitAgreeAfter(ctx, before, 30*time.Second); err != nil {
		return err
	}
	d.mu.Lock()
	winner, epoch := d.winner, d.winnerEpoch
	d.mu.Unlock()
	if winner != "" {
		d.say("   resolved: every member kept %s's commit on epoch %s; the other refresh, rolled back, was made again\n   on top of it (a change on a losing branch is redone, not lost)", winner, epoch)
	}

	d.say("\n6. Where everyone stands")
	for _, name := range d.names {
		epoch, auth, err := d.nodes[name].EpochAuthenticator(ctx, "demo")
		if err != nil {
			return err
		}
		st, _ := d.nodes[name].Status(ctx)
		forks, rollbacks := 0, 0
		for _, g := range st.Groups {
			forks, rollbacks = g.Forks, g.Rollbacks
		}
		d.say("   %-5s epoch %d, epoch authenticator %s…, forks seen %d, rollbacks %d", name, epoch, hex.EncodeToString(auth)[:16], forks, rollbacks)
	}
	msgs, err := carol.Read(ctx, "demo", 0, 0)
	if err != nil {
		return err
	}
	d.say("   carol's history:")
	for _, m := range msgs {
		mark := "provisional"
		if m.Final {
			mark = "final"
		}
		d.say("     [%s] %s: %s", mark, m.Sender, m.Text)
	}
	d.say("\nDone in %.1fs. Try it for real (the README's \"Use it\"): 'go build -o parley ./cmd/node', then\n'./parley init --name YOU', './parley run', and in another terminal './parley help'.", time.Since(d.start).Seconds())
	return nil
}

// waitAgree waits until every node is in the group with the given number
// of members, on one epoch.
func (d *nodeDemo) waitAgree(ctx context.Context, members int, timeout time.Duration) error {
	return d.waitFor(ctx, timeout, "the members to agree", func() bool {
		var first []byte
		for i, name := range d.names {
			gs, _ := d.nodes[name].Groups(ctx)
			if len(gs) != 1 || gs[0].Members != members || gs[0].Pending {
				return false
			}
			_, auth, err := d.nodes[name].EpochAuthenticator(ctx, "demo")
			if err != nil {
				return false
			}
			if i == 0 {
				first = auth
			} else if string(auth) != string(first) {
				return false
			}
		}
		return true
	})
}

// waitAgreeAfter waits until every node is on one epoch newer than before
// and stays there for a second: both refreshes committed (in one commit
// or two, depending on who committed first), the fork resolved.
func (d *nodeDemo) waitAgreeAfter(ctx context.Context, before uint64, timeout time.Duration) error {
	var stable []byte
	var since time.Time
	return d.waitFor(ctx, timeout, "the fork to be resolved", func() bool {
		var first []byte
		for i, name := range d.names {
			epoch, auth, err := d.nodes[name].EpochAuthenticator(ctx, "demo")
			if err != nil || epoch <= before {
				return false
			}
			if i == 0 {
				first = auth
			} else if string(auth) != string(first) {
				return false
			}
		}
		if string(first) != string(stable) {
			stable, since = first, time.Now()
		}
		return time.Since(since) > time.Second
	})
}

func (d *nodeDemo) waitMessages(ctx context.Context, count int, timeout time.Duration) error {
	return d.waitFor(ctx, timeout, "the messages", func() bool {
		for _, name := range d.names {
			msgs, err := d.nodes[name].Read(ctx, "demo", 0, 0)
			if err != nil || len(msgs) < count {
				return false
			}
		}
		return true
	})
}

func (d *nodeDemo) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func short(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}
