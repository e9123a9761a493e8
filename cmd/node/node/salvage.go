package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/store"
)

// When the store's tables are damaged the node does not stay down: the
// store is salvaged (store.Salvage) into a new one sealed the same way,
// and the damaged one is moved aside, whole. The new store keeps what may
// be older than it was without harm: the identity (the node keeps its peer
// ID and credential), contacts and the peer book, node settings, each
// group's record and its message history. It keeps no group's ordering or
// MLS state, outbox, KeyPackage private keys, invite codes, join requests
// or file transfers: a copy of group state older than what the member sent
// on would make it use a nonce or a ratchet generation twice. So every
// group comes back damaged (see forget.go), with the way out: forget it,
// and be removed and invited again.

// scopeSalvaged marks the groups whose state a salvage did not keep (key:
// the hex group id, value: the SHA-256 of the group record it was made
// for); the mark is dropped once the group is forgotten or joined again
// (its record is then gone or another).
const scopeSalvaged = "salvaged"

// damageSalvaged is the reason a salvaged group is listed damaged.
const damageSalvaged = "the store was damaged and salvaged; this group's state was not kept"

// salvagePlan is what a salvage copies (see above); it marks every group
// salvaged before the new store takes the old one's place.
var salvagePlan = store.SalvagePlan{
	Identity:   identityKey,
	Settings:   []string{scopeContact, scopeNode, scopeGroup},
	Logs:       func(g []byte) bool { return len(g) == 33 && g[0] == 'H' }, // historyGroup
	KeyPackage: isLastResortBundle,
	Finish:     markSalvagedGroups,
}

// isLastResortBundle reports whether a stored KeyPackage (encodeBundle) is
// a last-resort one: the contact codes given out carry it, for
// invitations while this node is offline, and it may be used any number
// of times, so a salvage keeps it (a Welcome made with it can be opened).
func isLastResortBundle(data []byte) bool {
	s := cryptobyte.String(data)
	var kpb []byte
	var m wire.MLSMessage
	if !codec.ReadOpaque(&s, &kpb) || codec.Unmarshal(kpb, &m) != nil || m.KeyPackage == nil {
		return false
	}
	return m.KeyPackage.Extensions.Has(group.ExtensionLastResort)
}

// salvageNotKept says what a salvage leaves behind, for the log.
const salvageNotKept = "every group's ordering and MLS state, outbox and delivered ids; single-use KeyPackage private keys (the last-resort one, which contact codes carry, is kept); invite codes; join requests; file transfers; Welcomes kept for joiners; who-added-whom notes"

// openNodeStore opens the store of the data directory dir, salvaging it
// if its tables are damaged (it reuses the passphrase given: nothing is
// asked again).
func openNodeStore(ctx context.Context, dir string, passphrase []byte, log *slog.Logger) (*store.Store, error) {
	path := filepath.Join(dir, storeDirName)
	if done, err := store.FinishSalvage(path); err != nil {
		return nil, err
	} else if done {
		log.Error("store: a salvage interrupted by a crash was completed: the salvaged store is now in place", "dir", path)
	}
	st, err := openDataStore(dir, passphrase, false, log)
	if err == nil || !errors.Is(err, store.ErrDamagedTable) {
		return st, err
	}
	log.Error("store damaged; salvaging what can be read safely into a new store", "dir", path, "err", err)
	opts, oerr := storeOptions(dir, passphrase, false, log)
	if oerr != nil {
		return nil, errors.Join(err, oerr)
	}
	st, rep, serr := store.Salvage(path, salvagePlan, opts...)
	switch {
	case errors.Is(serr, store.ErrIdentityLost):
		log.Error("store damaged and this node's identity is lost; nothing was changed", "dir", path, "damaged", damagedFiles(rep), "err", serr)
		return nil, fmt.Errorf("node: the store is damaged and this node's identity cannot be read from it, so the identity is lost; the damaged store is kept as it was at %s (to start again, make a new identity with 'parley init' in another data directory): %w", path, serr)
	case serr != nil:
		log.Error("store damaged and could not be salvaged; nothing was changed", "dir", path, "err", serr)
		return nil, fmt.Errorf("node: the store is damaged (%w) and could not be salvaged; the damaged store is kept at %s: %w", err, path, serr)
	}
	marked, lost := salvagedGroups(ctx, st, rep)
	contacts, _ := st.Settings(ctx, scopeContact)
	log.Error("store salvaged: the damaged store was moved aside and a new one made; every group must be rejoined",
		"damaged", damagedFiles(rep), "moved_to", rep.MovedTo,
		"kept", fmt.Sprintf("the identity, %d contacts, %d peer book entries, %d settings and group records, %d history messages, %d last-resort KeyPackages", len(contacts), rep.Peers, rep.Settings, rep.LogEntries, rep.KeyPackagesKept),
		"groups_damaged", marked, "groups_lost", lost,
		"not_kept", salvageNotKept,
		"unreadable", rep.Unreadable,
		"note", "records in a damaged table that badger skipped without an error (after a damaged block) are missing and not counted",
		"way_out", "for each group: parley group forget NAME, then ask a member to remove and re-invite you")
	return st, nil
}

func damagedFiles(rep *store.SalvageReport) []string {
	if rep == nil {
		return nil
	}
	return rep.Damaged
}

// markSalvagedGroups marks every group that has a record in the salvaged
// store st (see scopeSalvaged).
func markSalvagedGroups(ctx context.Context, st *store.Store) error {
	recs, err := st.Settings(ctx, scopeGroup)
	if err != nil {
		return err
	}
	b := st.NewBatch()
	for hexID, raw := range recs {
		sum := sha256.Sum256(raw)
		b.PutSetting(scopeSalvaged, hexID, sum[:])
	}
	return st.Write(ctx, b)
}

// salvagedGroups returns the names of the groups of the salvaged store st,
// and the ids of the groups that had state but whose record was lost
// (they cannot be listed).
func salvagedGroups(ctx context.Context, st *store.Store, rep *store.SalvageReport) (names, lost []string) {
	recs, err := st.Settings(ctx, scopeGroup)
	if err != nil {
		return nil, nil
	}
	for hexID, raw := range recs {
		var meta groupMeta
		if json.Unmarshal(raw, &meta) == nil && meta.Name != "" {
			names = append(names, meta.Name)
		} else {
			names = append(names, hexID)
		}
	}
	for _, g := range rep.Groups {
		if len(g) != 32 {
			continue
		}
		if _, ok := recs[hex.EncodeToString(g)]; !ok {
			lost = append(lost, hex.EncodeToString(g))
		}
	}
	sort.Strings(names)
	sort.Strings(lost)
	return names, lost
}

// applySalvageMarks lists as damaged, with damageSalvaged, the groups a
// salvage left without state (including those that were waiting for a
// Welcome: the KeyPackage it would be sealed to is gone), and drops the
// marks of groups forgotten or joined again since. It runs after
// loadGroups, before anything else uses the groups.
func (n *Node) applySalvageMarks(ctx context.Context) error {
	marks, err := n.st.Settings(ctx, scopeSalvaged)
	if err != nil {
		n.log.Warn("salvage marks unreadable", "err", err)
		return nil
	}
	recs, err := n.st.Settings(ctx, scopeGroup)
	if err != nil {
		n.log.Warn("salvage marks: group records unreadable", "err", err)
		return nil
	}
	done := n.st.NewBatch()
	for hexID, mark := range marks {
		old := n.runner(hexID)
		sum := sha256.Sum256(recs[hexID])
		if old == nil || recs[hexID] == nil || !bytes.Equal(mark, sum[:]) || old.damaged == "" && old.loop != nil {
			done.DeleteSetting(scopeSalvaged, hexID)
			continue
		}
		if old.damaged == damageSalvaged {
			continue
		}
		old.close()
		g := n.newRunner(old.gid, old.meta, nil, old.gs)
		g.damaged = damageSalvaged
		n.mu.Lock()
		n.groups[hexID] = g
		n.mu.Unlock()
		if err := g.start(); err != nil {
			return err
		}
		n.log.Error("group listed as damaged: the store was salvaged without its state", "group", hexID[:8], "name", old.meta.Name,
			"way_out", fmt.Sprintf("parley group forget %s, then ask a member to remove and re-invite you", shellArg(old.meta.Name)))
	}
	if done.Len() > 0 {
		if err := n.st.Write(ctx, done); err != nil {
			n.log.Warn("dropping salvage marks", "err", err)
		}
	}
	return nil
}
