package api

import (
	"fmt"
	"regexp"
	"strings"
)

// Health states of a group, as GroupStatus.State gives them.
const (
	StateOK      = "ok"      // it has everything its peers' heads say exists
	StateSyncing = "syncing" // catch-up requests are outstanding
	StateBehind  = "behind"  // it lacks messages or epochs, and a member is online to fetch them from
	StateStalled = "stalled" // it lacks messages or epochs, and no member is online to fetch them from
	StateOffline = "offline" // it lacks nothing it knows of, but no other member is online
	StatePending = "pending" // a join waits for its Welcome
	StateRemoved = "removed" // this node is out of the group
	StateDamaged = "damaged" // its saved state cannot be read
	StateStopped = "stopped" // its state could not be saved; it starts again by itself
)

// Health says how a group is doing, from the figures of its status: a
// state, the reason in a few words, and what the user can do about it
// ("" when nothing is needed).
func Health(g GroupStatus) (state, reason, todo string) {
	missing := ""
	switch {
	case g.Missing > 0:
		missing = fmt.Sprintf("%s (%s) to fetch", count(g.Missing, "message"), byteSize(g.MissingBytes))
	case g.BehindEpochs > 0:
		missing = fmt.Sprintf("%s to fetch", count(int(g.BehindEpochs), "epoch"))
	}
	alone := g.Members <= 1
	switch {
	case g.Damaged != "":
		return StateDamaged, g.Damaged, fmt.Sprintf("run parley group forget %s, then ask a member to remove and re-invite you", shellWord(g.Name))
	case g.Stopped != "":
		return StateStopped, g.Stopped, "it starts again by itself once it can save (if the disk is full, free space on it) and catches up; the daemon's log says more"
	case g.Removed:
		return StateRemoved, "you are no longer a member", fmt.Sprintf("parley group forget %s drops it from this node", shellWord(g.Name))
	case g.Pending && g.Approval == ApproveByInviter:
		return StatePending, "waiting for the member who invited you to approve your join", "ask them to run parley requests, then parley approve; compare fingerprints when they ask"
	case g.Pending && g.Approval == ApproveByMembers:
		return StatePending, "waiting for a member to approve your join", "ask any member to run parley requests, then parley approve; compare fingerprints when they ask"
	case g.Pending:
		return StatePending, "waiting for a member to add you", "the member you joined through must be online; it adds you when it is"
	case missing != "" && g.OnlinePeers == 0:
		return StateStalled, missing + ", and no member online to fetch them from", "check this node's network (the peers line above); the group catches up when a member comes online"
	case missing != "":
		return StateBehind, missing, ""
	case g.Syncing:
		return StateSyncing, "asking members for what it lacks", ""
	case !alone && g.OnlinePeers == 0 && g.Outbox > 0:
		return StateOffline, fmt.Sprintf("no other member online; %s of yours wait for one", count(g.Outbox, "message")), "they go out when a member comes online"
	case !alone && g.OnlinePeers == 0:
		return StateOffline, "no other member online", ""
	}
	return StateOK, "", ""
}

// byteSize is n bytes in B, KiB, MiB or GiB.
func byteSize(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

var plainWord = regexp.MustCompile(`^[A-Za-z0-9._@%+=:,/-]+$`)

// shellWord quotes s for a command line shown to the user.
func shellWord(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// count is n and the noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
