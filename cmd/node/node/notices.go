package node

import (
	"fmt"

	"github.com/parley-p2p/parley/ordering"
)

// rollbackText tells a person of a rollback: whose commit on the fork's
// epoch the fork choice kept and whose it left, where the loop knows the
// committers (self is this member's identity: "yours").
func rollbackText(no ordering.Notice, self string) string {
	rolled := plural(no.Depth, "epoch")
	whose := func(id string) string {
		switch {
		case id == "":
			return ""
		case id == self:
			return "yours"
		}
		return names([]string{id})[0] + "'s"
	}
	winner, loser := whose(no.Winner), whose(no.Loser)
	switch {
	case winner != "" && loser != "" && winner != loser:
		return fmt.Sprintf("commits on epoch %d: %s won, %s was rolled back (%s)", no.Epoch, winner, loser, rolled)
	case winner != "":
		return fmt.Sprintf("switched to %s commit on epoch %d (%s rolled back)", winner, no.Epoch, rolled)
	}
	return fmt.Sprintf("switched branch at epoch %d (%s rolled back)", no.Epoch, rolled)
}
