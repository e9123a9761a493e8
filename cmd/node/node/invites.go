package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/parley-p2p/parley/store"
)

// Invite tokens (InviteCode) are kept as settings of scopeInvite, by the
// hex of the token, until they are used or expire. A join request spends
// its token with takeInvite: one store transaction reads and deletes it,
// so of two joins with one token exactly one gets in. Expired tokens are
// purged when the node starts and every invitePurgeInterval, with the
// expired marks of decided join requests (joinshare.go).

// invitePurgeInterval is how often the node deletes expired invites.
const invitePurgeInterval = time.Hour

// Errors of takeInvite; their text goes back to the joining peer.
var (
	errUnknownInvite = errors.New("unknown or used invite code")
	errExpiredInvite = errors.New("expired invite code")
)

// takeInvite spends the invite token: it deletes the invite and returns
// its record if it existed and had not expired at now. An expired or
// unreadable invite is deleted too, and refused.
func (n *Node) takeInvite(ctx context.Context, token []byte, now time.Time) (inviteRecord, error) {
	if len(token) != 16 {
		return inviteRecord{}, errUnknownInvite
	}
	raw, err := n.st.TakeSetting(ctx, scopeInvite, hex.EncodeToString(token))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return inviteRecord{}, errUnknownInvite
	case err != nil:
		return inviteRecord{}, err
	}
	inv, ok := parseInvite(raw, now)
	if !ok {
		return inviteRecord{}, errExpiredInvite
	}
	return inv, nil
}

// parseInvite decodes an invite record and tells whether it is still
// valid at now.
func parseInvite(raw []byte, now time.Time) (inviteRecord, bool) {
	var inv inviteRecord
	if json.Unmarshal(raw, &inv) != nil || inv.Group == "" || !now.Before(inv.Expires) {
		return inviteRecord{}, false
	}
	return inv, true
}

// purgeInvites deletes the invites expired (or unreadable) at now and
// returns how many.
func (n *Node) purgeInvites(ctx context.Context, now time.Time) (int, error) {
	return n.st.PurgeSettings(ctx, scopeInvite, func(_ string, raw []byte) bool {
		_, ok := parseInvite(raw, now)
		return !ok
	})
}

// inviteLoop purges expired invites (and join marks) now and every
// invitePurgeInterval until the node closes.
func (n *Node) inviteLoop() {
	t := time.NewTicker(invitePurgeInterval)
	defer t.Stop()
	for {
		switch k, err := n.purgeInvites(n.ctx, time.Now()); {
		case err != nil && n.ctx.Err() == nil:
			n.log.Warn("purging expired invites", "err", err)
		case k > 0:
			n.log.Info("purged expired invites", "count", k)
		}
		switch k, err := n.purgeJoinMarks(n.ctx, time.Now()); {
		case err != nil && n.ctx.Err() == nil:
			n.log.Warn("purging the marks of decided join requests", "err", err)
		case k > 0:
			n.log.Debug("purged the marks of decided join requests", "count", k)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}
