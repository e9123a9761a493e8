package ordering

// SyncCost splits the bytes of catch-up by what they carry, so that the
// simulator can say where they go. Requests are counted by the member
// that sends them, answers by the member that sends them, except
// NewBytes and Empty, which only the requester can tell.
type SyncCost struct {
	// Requests and RequestBytes count the requests sent; Have, Logs,
	// HeldVotes and HeldLogs are the parts of RequestBytes that list the
	// epochs held, the digests of logs to compare, the heads held (a
	// vote trade) and the envelopes held of the newest logs.
	Requests, RequestBytes          int
	Have, Logs, HeldVotes, HeldLogs int
	// Answers and AnswerBytes count the answers sent. Of these bytes,
	// Envelopes are the envelopes of answers with envelopes (syncOK),
	// Heads the signed heads of a vote trade, Refusals the bytes of
	// refusals (with the removing commit and the heads relayed with it),
	// RefusalCount their number, and GroupInfo the GroupInfos to rejoin
	// with.
	Answers, AnswerBytes       int
	Envelopes, Heads, Refusals int
	RefusalCount, GroupInfo    int
	// NewBytes are the envelope bytes of answers that their requester
	// had not seen and took in (Stats.SyncNewBytes); Empty counts the
	// answers with envelopes (status OK) that brought nothing it took in
	// and left nothing out that gossip was bringing (those count in
	// LeftOut), but for the answers to a new member's ask for the log of
	// its join epoch: JoinAsks counts those asks, one per join but for a
	// timeout, and JoinEmpty the answers to them that brought nothing
	// (nobody had sent anything there before it subscribed: the usual
	// case, and the ask is cheap, its request listing one epoch).
	// OKAnswers counts the answers with envelopes (status OK) their
	// requesters took in, but for those to joiners' asks: what Empty is
	// a part of.
	NewBytes, Empty     int
	JoinAsks, JoinEmpty int
	OKAnswers           int
	// Prompts counts the asks a member made of a peer so that the peer
	// asks back for the member's leave, which waits uncommitted
	// (see Loop.ownProposalWaits), and PromptEmpty the answers to them
	// that brought nothing: the usual case, not in Empty or OKAnswers.
	Prompts, PromptEmpty int
	// NewEpochs counts, for each answer, the epochs of which it brought
	// envelopes that its requester took in: with NewBytes, what catch-up
	// costs beyond what was missed can be put per epoch caught up.
	NewEpochs int
	// Sketches counts the logs requests sketched (see logSketch), and
	// Relists the answers that said one of a request's did not peel.
	Sketches, Relists int
	// LeftOut counts the envelopes answers left out because gossip was
	// bringing them (counted by the requester), and LeftOutAsks the
	// requests made again for those that did not come.
	LeftOut, LeftOutAsks int
	// RemovedRequests and RemovedRequestBytes are the part of Requests
	// and RequestBytes sent by members that held themselves removed
	// (see removedRecheck): each draws a refusal, or brings them back.
	RemovedRequests, RemovedRequestBytes int
}

// Add returns s plus c, field by field.
func (s SyncCost) Add(c SyncCost) SyncCost { return s.combine(c, 1) }

// Sub returns s minus c, field by field.
func (s SyncCost) Sub(c SyncCost) SyncCost { return s.combine(c, -1) }

func (s SyncCost) combine(c SyncCost, sign int) SyncCost {
	return SyncCost{
		Requests: s.Requests + sign*c.Requests, RequestBytes: s.RequestBytes + sign*c.RequestBytes,
		Have: s.Have + sign*c.Have, Logs: s.Logs + sign*c.Logs,
		HeldVotes: s.HeldVotes + sign*c.HeldVotes, HeldLogs: s.HeldLogs + sign*c.HeldLogs,
		Answers: s.Answers + sign*c.Answers, AnswerBytes: s.AnswerBytes + sign*c.AnswerBytes,
		Envelopes: s.Envelopes + sign*c.Envelopes, Heads: s.Heads + sign*c.Heads, Refusals: s.Refusals + sign*c.Refusals,
		RefusalCount: s.RefusalCount + sign*c.RefusalCount, GroupInfo: s.GroupInfo + sign*c.GroupInfo,
		NewBytes: s.NewBytes + sign*c.NewBytes, Empty: s.Empty + sign*c.Empty, NewEpochs: s.NewEpochs + sign*c.NewEpochs,
		Sketches: s.Sketches + sign*c.Sketches, Relists: s.Relists + sign*c.Relists,
		LeftOut: s.LeftOut + sign*c.LeftOut, LeftOutAsks: s.LeftOutAsks + sign*c.LeftOutAsks,
		RemovedRequests: s.RemovedRequests + sign*c.RemovedRequests, RemovedRequestBytes: s.RemovedRequestBytes + sign*c.RemovedRequestBytes,
		JoinAsks: s.JoinAsks + sign*c.JoinAsks, JoinEmpty: s.JoinEmpty + sign*c.JoinEmpty, OKAnswers: s.OKAnswers + sign*c.OKAnswers,
		Prompts: s.Prompts + sign*c.Prompts, PromptEmpty: s.PromptEmpty + sign*c.PromptEmpty,
	}
}

// countRequest counts a request about to be sent (its encoding, body).
func (c *SyncCost) countRequest(r *syncRequest, body []byte) {
	c.Requests++
	c.RequestBytes += len(body)
	c.Have += 32 * len(r.have)
	c.Logs += 20 * len(r.logs)
	c.HeldVotes += heldVoteLen * len(r.held)
	for _, h := range r.heldLogs {
		if h.sketch != nil {
			c.Sketches++
			c.HeldLogs += 32 + 1 + 4 + sketchCellLen*len(h.sketch.cells)
			continue
		}
		c.HeldLogs += 32 + 1 + 4 + 8*len(h.ids)
	}
}

// countAnswer counts an answer about to be sent (its encoding, body).
func (c *SyncCost) countAnswer(r *syncResponse, body []byte) {
	c.Answers++
	c.AnswerBytes += len(body)
	switch r.status {
	case syncOK:
		for _, e := range r.envelopes {
			c.Envelopes += len(e)
		}
		for _, h := range r.heads {
			c.Heads += len(h)
		}
	case syncRefused:
		c.RefusalCount++
		c.Refusals += len(body)
	}
	c.GroupInfo += len(r.groupInfo)
}
