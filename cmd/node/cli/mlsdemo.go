package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// runMLSDemo forms a group of MLS members in this process and has them talk:
// creation, Welcome joins, an external join, messages, an update, a
// removal. Every step checks that all members agree.
func runMLSDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mls-demo", flag.ContinueOnError)
	suiteID := fs.Uint("suite", 1, "MLS cipher suite (1-7)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: parley mls-demo [-suite N]\n\nForms an MLS group of four members in this process and has them talk,\nshowing each epoch's authenticator as the members agree on it.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cs := suite.CipherSuite(*suiteID)
	if err := cs.Check(); err != nil {
		return err
	}
	d := &demo{cs: cs, out: stdout, cfg: &group.Config{}, members: map[string]*group.State{}}
	return d.run(ctx)
}

type demo struct {
	cs      suite.CipherSuite
	out     io.Writer
	cfg     *group.Config
	members map[string]*group.State
	order   []string
}

func (d *demo) bundle(name string) (*group.KeyPackageBundle, error) {
	signer, err := d.cs.GenerateSignatureKey(nil)
	if err != nil {
		return nil, err
	}
	return group.NewKeyPackage(d.cs, signer, group.KeyPackageOptions{Credential: wire.NewBasicCredential([]byte(name))})
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

// commit has name's commit processed by every other member.
func (d *demo) commit(name string, sc *group.StagedCommit) error {
	for _, other := range d.order {
		if other == name {
			continue
		}
		res, err := d.members[other].ProcessBytes(sc.Message)
		if err != nil {
			return fmt.Errorf("%s processing %s's commit: %w", other, name, err)
		}
		if res.Commit.SelfRemoved {
			d.say("  %-6s learns it was removed", other)
			delete(d.members, other)
			continue
		}
		d.members[other] = res.Commit.State
	}
	if sc.State != nil {
		d.members[name] = sc.State
	}
	var kept []string
	for _, n := range d.order {
		if _, ok := d.members[n]; ok {
			kept = append(kept, n)
		}
	}
	d.order = kept
	return d.agree()
}

func (d *demo) agree() error {
	var ref []byte
	for _, n := range d.order {
		ea := d.members[n].EpochAuthenticator()
		if ref == nil {
			ref = ea
		} else if !bytes.Equal(ea, ref) {
			return fmt.Errorf("members disagree on epoch %d", d.members[n].Epoch())
		}
	}
	s := d.members[d.order[0]]
	d.say("  epoch %d: %d members %v agree, epoch authenticator %s…", s.Epoch(), len(d.order), d.order, hex.EncodeToString(ref[:8]))
	return nil
}

func (d *demo) talk(from, text string) error {
	msg, err := d.members[from].EncryptApplication([]byte(text), nil)
	if err != nil {
		return err
	}
	for _, n := range d.order {
		if n == from {
			continue
		}
		res, err := d.members[n].ProcessBytes(msg)
		if err != nil {
			return fmt.Errorf("%s decrypting %s: %w", n, from, err)
		}
		if string(res.ApplicationData) != text {
			return fmt.Errorf("%s read %q", n, res.ApplicationData)
		}
	}
	d.say("  %s: %q (%d bytes on the wire, read by %d members)", from, text, len(msg), len(d.order)-1)
	return nil
}

func (d *demo) run(ctx context.Context) error {
	start := time.Now()
	d.say("Parley demo: MLS (RFC 9420) with %v", d.cs)
	alice, err := d.bundle("alice")
	if err != nil {
		return err
	}
	a, err := group.Create(d.cfg, []byte("demo group"), nil, alice)
	if err != nil {
		return err
	}
	d.members["alice"], d.order = a, []string{"alice"}
	d.say("alice creates the group")
	if err := d.agree(); err != nil {
		return err
	}

	d.say("alice adds bob and carol with one commit; they join from the Welcome")
	var adds []wire.Proposal
	joiners := map[string]*group.KeyPackageBundle{}
	for _, n := range []string{"bob", "carol"} {
		b, err := d.bundle(n)
		if err != nil {
			return err
		}
		joiners[n] = b
		adds = append(adds, &wire.Add{KeyPackage: *b.KeyPackage})
	}
	sc, err := a.Commit(group.CommitOptions{Proposals: adds, WelcomeWithTree: true})
	if err != nil {
		return err
	}
	welcome := codec.MustMarshal(wire.NewMLSMessage(sc.Welcome))
	d.members["alice"] = sc.State
	for _, n := range []string{"bob", "carol"} {
		var m wire.MLSMessage
		if err := codec.Unmarshal(welcome, &m); err != nil {
			return err
		}
		s, err := group.JoinWelcome(d.cfg, m.Welcome, joiners[n], group.JoinOptions{})
		if err != nil {
			return fmt.Errorf("%s joining: %w", n, err)
		}
		joiners[n].DestroyInitKey()
		d.members[n], d.order = s, append(d.order, n)
	}
	if err := d.agree(); err != nil {
		return err
	}
	if err := d.talk("bob", "hi all, bob here"); err != nil {
		return err
	}
	if err := d.talk("carol", "carol says hello"); err != nil {
		return err
	}

	d.say("dave joins by himself with an external commit from a GroupInfo")
	gi, err := d.members["carol"].GroupInfo(group.GroupInfoOptions{WithTree: true, WithExternalPub: true})
	if err != nil {
		return err
	}
	dave, err := d.bundle("dave")
	if err != nil {
		return err
	}
	ext, err := group.JoinExternal(d.cfg, gi, dave.Signer, group.ExternalJoinOptions{Credential: dave.KeyPackage.LeafNode.Credential})
	if err != nil {
		return err
	}
	d.order = append(d.order, "dave")
	d.members["dave"] = nil
	if err := d.commitExternal("dave", ext); err != nil {
		return err
	}
	if err := d.talk("dave", "dave is in"); err != nil {
		return err
	}

	d.say("bob proposes an update of his keys; carol commits it (encrypted)")
	msg, _, err := d.members["bob"].Propose(&wire.Update{}, true, nil)
	if err != nil {
		return err
	}
	for _, n := range d.order {
		if n != "bob" {
			if _, err := d.members[n].ProcessBytes(msg); err != nil {
				return err
			}
		}
	}
	sc, err = d.members["carol"].Commit(group.CommitOptions{IncludePending: true, Encrypt: true})
	if err != nil {
		return err
	}
	if err := d.commit("carol", sc); err != nil {
		return err
	}

	d.say("alice removes carol")
	carol := d.members["carol"].OwnLeaf()
	sc, err = d.members["alice"].Commit(group.CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: uint32(carol)}}})
	if err != nil {
		return err
	}
	if err := d.commit("alice", sc); err != nil {
		return err
	}
	if err := d.talk("alice", "carol can no longer read this"); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d.say("done in %v", time.Since(start).Round(time.Millisecond))
	return nil
}

// commitExternal has an external joiner's commit processed by the members.
func (d *demo) commitExternal(name string, sc *group.StagedCommit) error {
	for _, other := range d.order {
		if other == name {
			continue
		}
		res, err := d.members[other].ProcessBytes(sc.Message)
		if err != nil {
			return fmt.Errorf("%s processing %s's external commit: %w", other, name, err)
		}
		d.members[other] = res.Commit.State
	}
	d.members[name] = sc.State
	return d.agree()
}
