package ordering

import (
	"slices"
	"time"
)

// abandonPatience is how many SyncTimeouts a member waits, once most of
// its epoch's members vote for epochs it cannot place below its root,
// before it asks them for a way back; a member that sent no head for
// silentAfter HeadKeepalives is not counted.
const (
	abandonPatience = 4
	silentAfter     = 3
)

// checkAbandoned handles a history the rest of the group has left. A member
// that rejoined by external commit starts a new history at the GroupInfo's
// epoch; if that history then loses (the GroupInfo came from a branch that
// lost after a partition healed), the branch that won forked below its
// root: the fork choice cannot see it, and heads for its epochs, numbered
// below the root, look like heads of members lagging behind. Lagging
// members catch up within a few SyncTimeouts; so when, for abandonPatience
// SyncTimeouts, a strict majority of the other members of this member's
// tip epoch that send heads (the others are offline, or were removed on
// the branch they follow) vote for epochs it does not hold below its root,
// its history is abandoned. It asks them in turn for a GroupInfo (a sync
// request with want_group_info): a member that holds none of its epochs
// and counts it as a member answers with one, and it rejoins; one that
// does not count it as a member refuses it, which counts towards its
// removal as any refusal does. It runs on every tick, so it returns at
// once unless some vote waits for an epoch not in the graph.
func (l *Loop) checkAbandoned() {
	if l.removed || !l.graph.anyWaiting() {
		l.abandonedSince = time.Time{}
		return
	}
	live, _, away := l.liveVotes()
	if 2*len(away) <= live {
		l.abandonedSince = time.Time{}
		return
	}
	if l.abandonedSince.IsZero() {
		l.abandonedSince = l.now
		return
	}
	if l.now.Sub(l.abandonedSince) < time.Duration(abandonPatience)*l.cfg.SyncTimeout {
		return
	}
	slices.Sort(away)
	if l.askSyncFor(away[l.abandonAsks%len(away)], syncAsk{wantGroupInfo: true}) {
		l.abandonAsks++
		l.stats.AbandonAsks++
	}
}

// liveVotes sorts the other members of the tip epoch that send heads (one
// within silentAfter HeadKeepalives; the others are offline, or were
// removed on the branch they follow): live counts them, with onChain
// voting on this member's canonical chain and away voting for epochs
// below its root that it does not hold.
func (l *Loop) liveVotes() (live, onChain int, away []string) {
	root := l.graph.Root()
	silent := time.Duration(silentAfter) * l.cfg.HeadKeepalive
	for _, m := range l.tip.Members {
		if seen, ok := l.voteSeen[m]; m == l.self || !ok || l.now.Sub(seen) >= silent {
			continue
		}
		live++
		v, ok := l.graph.votes[m]
		switch {
		case !ok:
		case l.graph.Get(v.Tip) != nil:
			if l.onCanonical(v.Tip) {
				onChain++
			}
		case l.voteEpoch[m] < root.Number:
			away = append(away, m)
		}
	}
	return live, onChain, away
}

// historyAlive reports whether a strict majority of the other members of
// the tip epoch that send heads vote on this member's canonical chain: a
// GroupInfo from a member whose history starts later (syncOlder) is then
// not a way forward but another history, such as one a removed member was
// left on, and the member does not rejoin it.
func (l *Loop) historyAlive() bool {
	live, onChain, _ := l.liveVotes()
	return 2*onChain > live
}
