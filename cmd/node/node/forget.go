package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/store"
)

// A group whose saved state cannot be read is damaged: it stays listed
// (api.Group.Damaged says why), with no loop, so it neither sends nor
// receives; its history, stored apart from the ordering state, stays
// readable. The ways out are ForgetGroup and joining again (a Welcome or
// an invite code replaces the unreadable state and keeps the history).

// Reasons a group is damaged, as api.Group.Damaged gives them.
const (
	damageRecord    = "group record unreadable"
	damageMissing   = "ordering state missing"
	damageChecksum  = "ordering state fails its checksum"
	damageMalformed = "ordering state does not decode"
	damageOther     = "ordering state unreadable"
)

// damageReason names what is wrong with a group's saved state, in a few
// words; the log has the whole error.
func damageReason(err error) string {
	switch {
	case isNotFound(err):
		return damageMissing
	case errors.Is(err, store.ErrCorrupt):
		return damageChecksum
	case errors.Is(err, ordering.ErrMalformedState):
		return damageMalformed
	}
	return damageOther
}

// damagedError is what the methods that need a damaged group's loop
// return: what is wrong, and the way out.
func (g *groupRunner) damagedError() error {
	return fmt.Errorf("%w: %q cannot be used (%s); its history stays readable with 'parley read'; to take part again run 'parley group forget %s' and ask a member to remove and re-invite you",
		api.ErrDamaged, g.meta.Name, g.damaged, shellArg(g.meta.Name))
}

var plainArg = regexp.MustCompile(`^[A-Za-z0-9._@%+=:,/-]+$`)

// shellArg quotes a group name for a command line shown to the user.
func shellArg(s string) string {
	if plainArg.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// groupRecords returns the group records (scope "group") by hex group id.
// If the scope cannot be read as a whole (a record fails its checksum),
// it reads the record of every group that has state in the store one by
// one, and returns those it cannot read in unreadable, so that the group
// is listed as damaged rather than the node failing to start. A pending
// group (which has no state yet) whose record is then not reached is
// logged as possibly missing.
func (n *Node) groupRecords(ctx context.Context) (metas map[string][]byte, unreadable map[string]error, err error) {
	metas, err = n.st.Settings(ctx, scopeGroup)
	if err == nil || !errors.Is(err, store.ErrCorrupt) {
		return metas, nil, err
	}
	n.log.Error("group records unreadable; reading them one by one (a group still joining may be missing)", "err", err)
	ids, err := n.st.Groups(ctx)
	if err != nil {
		return nil, nil, err
	}
	metas, unreadable = map[string][]byte{}, map[string]error{}
	for _, id := range ids {
		gid := id
		if len(id) == 33 && id[0] == 'H' {
			gid = id[1:] // a group's history (historyGroup)
		}
		if len(gid) != 32 {
			continue // file chunks of the retired format
		}
		hexID := hex.EncodeToString(gid)
		if _, ok := metas[hexID]; ok {
			continue
		}
		raw, err := n.st.Setting(ctx, scopeGroup, hexID)
		switch {
		case err == nil:
			metas[hexID] = raw
		case isNotFound(err):
			n.log.Warn("state of a group with no record; left alone", "group", hexID[:8])
		default:
			metas[hexID] = nil
			unreadable[hexID] = err
		}
	}
	return metas, unreadable, nil
}

// ForgetGroup implements api.Backend: it stops the group's loop and
// deletes what the node keeps of it (its record, ordering state, history,
// outbox, file chunks and transfer records, who-added-whom notes, unused
// invite codes, join requests and the marks of decided ones) in one
// write. Files already received stay where they are, and so do Welcomes
// kept for joiners (they are the joiners', and expire). Without force, a
// group the node is a member of is refused: leaving tells the other
// members, forgetting does not.
func (n *Node) ForgetGroup(ctx context.Context, ref string, force bool) error {
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	g, err := n.findGroup(ref)
	if err != nil {
		return err
	}
	member := g.damaged == "" && g.loop != nil && !g.status().Removed
	if member && !force {
		return fmt.Errorf("%w: you are a member of %q; leave it first with 'parley leave %s' and forget it once you are out (or forget it now with --force: the other members then still count you in)",
			api.ErrInvalid, g.meta.Name, shellArg(g.meta.Name))
	}
	n.mu.Lock()
	if n.groups[g.hexID] == g {
		delete(n.groups, g.hexID)
	}
	n.mu.Unlock()
	g.close()
	if err := n.deleteGroupRecords(ctx, g); err != nil {
		n.log.Error("forgetting a group", "group", g.hexID[:8], "err", err)
		return fmt.Errorf("forgetting %q: %w (what is left of it shows again when the daemon restarts)", g.meta.Name, err)
	}
	n.log.Info("group forgotten", "group", g.hexID[:8], "name", g.meta.Name, "damaged", g.damaged, "member", member)
	n.broadcast(api.Event{Type: api.EventNotice, Group: g.hexID, Text: "the group was forgotten on this node"})
	return nil
}

// deleteGroupRecords deletes a stopped group's records in one write, or,
// if they are too many for one transaction, in several, the group's
// record last (until it is gone the group is listed, and can be forgotten
// again).
func (n *Node) deleteGroupRecords(ctx context.Context, g *groupRunner) error {
	ids, err := n.st.Groups(ctx)
	if err != nil {
		return err
	}
	var parts []func(b *store.Batch)
	files := append([]byte{'F'}, g.gid...)
	for _, id := range ids {
		if len(id) > len(files) && bytes.HasPrefix(id, files) {
			parts = append(parts, func(b *store.Batch) { b.DeleteGroup(id) })
		}
	}
	parts = append(parts,
		func(b *store.Batch) { b.DeleteGroup(historyGroup(g.gid)) },
		func(b *store.Batch) { b.DeleteGroup(g.gid) },
	)
	settings := n.groupSettings(ctx, g.hexID, scopeFile, scopeSending, scopeReceiving, scopeFileDone, scopeAddedBy, scopeInvite, scopeJoinRequest, scopeJoinDecided)
	parts = append(parts, func(b *store.Batch) {
		for _, s := range settings {
			b.DeleteSetting(s[0], s[1])
		}
		b.DeleteSetting(scopeGroup, g.hexID)
	})
	b := n.st.NewBatch()
	for _, p := range parts {
		p(b)
	}
	err = n.st.Write(ctx, b)
	if !errors.Is(err, store.ErrTooLarge) {
		return err
	}
	for _, p := range parts {
		b := n.st.NewBatch()
		p(b)
		if err := n.st.Write(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// groupSettings lists the settings (scope, key) of the scopes that
// belong to a group besides its record. A scope that cannot be read is
// logged and skipped: what it holds of the group is harmless once the
// group is gone.
func (n *Node) groupSettings(ctx context.Context, hexID string, scopes ...string) [][2]string {
	var out [][2]string
	for _, scope := range scopes {
		recs, err := n.st.Settings(ctx, scope)
		if err != nil {
			n.log.Warn("forgetting a group: records unreadable; left", "group", hexID[:8], "scope", scope, "err", err)
			continue
		}
		for k, v := range recs {
			mine := strings.HasPrefix(k, hexID+"|")
			switch scope {
			case scopeInvite:
				var inv inviteRecord
				mine = json.Unmarshal(v, &inv) == nil && inv.Group == hexID
			case scopeJoinRequest:
				var rec joinRequestRecord
				mine = json.Unmarshal(v, &rec) == nil && rec.Group == hexID
			}
			if mine {
				out = append(out, [2]string{scope, k})
			}
		}
	}
	return out
}
