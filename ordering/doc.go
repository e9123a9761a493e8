// Package ordering makes the members of a group agree on one history of
// epochs without a delivery service (DESIGN.md, "Ordering: required
// properties").
//
// Two members can commit on the same epoch at once, a partition can let
// two halves of a group advance apart, a member can be offline for a week.
// Every member keeps a Graph of the epochs it has seen since the last
// pruned root, votes with signed heads for the epoch it is on, and follows
// the fork choice of Graph (LMD-GHOST over the members' latest heads; see
// Graph). When the fork choice moves it to another branch, it re-protects
// and re-sends its own application messages that were sent on the losing
// branch (receivers deliver each message id once) and re-issues its own
// adds, removes and updates that the winning branch lacks.
//
// Finality. An epoch on the canonical chain is final when a strict
// majority of its members has voted for it or a descendant, or when
// Retention further epochs are built on it. Epochs deeper than Retention
// below the tip, or older than MaxAge, are pruned and their secrets
// deleted, so no member can be made to roll back further than Retention.
// Quorum finality is a member's judgement on what it has seen: with
// adversarial delays a quorum-final epoch can still lose (the member then
// reports the rollback); depth finality cannot. A message is final once
// an epoch on the canonical chain it was seen in is final: the lowest,
// when it was seen in several, even when the lower copy came after the
// message was final in a higher one (Output.Finalized then lists it
// again, with the lower epoch), so that members that saw the copies in
// different orders agree on its epoch. After a rollback it is final again
// in its copy on the new chain, and after a restart the saved log says
// which epochs it was seen in (LogEntry.Message).
//
// Few forks. Each epoch has a preferred committer (members ranked by a
// hash of the epoch id and their identity); the others send proposals and
// commit only after a backoff proportional to their rank, so concurrent
// commits need the preferred committer to be slow or offline.
//
// Catch-up. Heads tell a member it is behind; it asks the member whose
// head it saw for the commits and messages after the newest epoch they
// share, over a direct stream. Answers page: a request lists what the
// requester holds of its newest epochs' logs (held_logs), an answer
// carries only what it lacks within maxSyncBytes and says whether more is
// left, and the requester asks that member again at once, so that a large
// file is one message among others and a member that crashed gets about
// what it missed. Envelopes a member refused (a sender no longer a member
// at its tip, a message it cannot decrypt) are listed as held too, so that
// no answer brings them again and again. A page that brings nothing the
// requester can take in ends the paging. Heads list each recent epoch's
// messages and bytes, so a member knows what it lacks until it has it
// (Loop.Missing). A member whose epochs are all beyond the
// sender's retention gets a GroupInfo instead and rejoins by external
// commit, and is told which range of epochs it missed.
//
// Any head for an epoch a member does not hold makes it ask, whatever the
// epoch's number: after a long partition the side with more members may
// have made fewer commits.
//
// Exactly once. Heads carry digests of the application messages of the
// newest epochs with messages, one by one, and of the whole span the
// member holds; a member whose digests differ asks for the logs that
// differ. A digest covers what a member has seen of an epoch: the
// messages it holds and those it refuses (a member that took in a message
// before it saw its sender's removal, and one that saw the removal first,
// have nothing to give each other, and compared by what each holds they
// would ask each other for ever). A member that refused a message as its
// sender's removal came first keeps it (Config.MaxRefusedKept) and serves
// it to members that never saw it, so that they see it too: with the
// members that took it in gone, the two would differ for good. A member
// that joined later holds a shorter span and cannot
// compare an older member's; the older member can, and asks it, and the
// newer member, serving that request, asks back for the epochs that differ
// deeper than heads list (askBack): that is how it gets messages sent on
// its first epoch by members it could not reach then. A member forgets the
// id of a message it delivered once every epoch it could have a copy in
// is pruned; a sender back from longer than that re-sends what it never
// saw final, and its receivers tell a copy of a message whose id they
// forgot by its SentAt, no later than the newest they forgot of that
// sender's (forgotten.go).
//
// Abandoned histories. A member that rejoined starts a history at the
// GroupInfo's epoch; if the branch it came from then loses, the winner
// forked below that history's root, where the fork choice cannot see it.
// When most of the members of its epoch that still send heads keep voting,
// for a while, for epochs below its root that it does not hold, it asks
// them for a GroupInfo (want_group_info) and rejoins where they are
// (checkAbandoned). A member added again on a branch it cannot see, whose
// Welcome it cannot read (its init key spent), asks, once it holds itself
// removed, about heads below its root too, for a GroupInfo (readded): the
// winning branch may be fewer epochs long than the one it joined on. The
// other way round, a member does not rejoin from a
// GroupInfo of a history that starts after its own (syncOlder, the
// fallback of a member far behind) while most of its epoch's members that
// send heads vote on its own chain (historyAlive): that later history may
// be one a removed member was left on.
//
// Liveness. Progress does not rest on when requests are made, only on
// this: a member that a head shows lacking something (an epoch, or
// messages of an epoch both hold) asks that head's sender, at once or
// after Config.GossipGrace, and asks again at most every SyncTimeout while
// the sender's latest head still shows it (an ask the request limits
// refuse is retried on the next tick); every answer either brings
// something the requester takes in, or ends its paging; members send
// heads at least every HeadKeepalive. An answer leaves out application
// messages that reached its responder by gossip less than GossipGrace
// before (gossip is bringing them to the requester too, and sent, they
// came twice; Config.KeepGossiped sends them); it names them, and the
// requester asks the responder again GossipGrace later for those that
// did not come, when the responder leaves none of them out. Messages of
// the epoch that added the requester are not left out unless the
// responder took in a head of the requester before they came: a new
// member subscribes once it has its Welcome, and gossip cannot bring it
// what went out before. So while a member that holds the
// missing part stays reachable, what is missing shrinks until it is gone.
// The property tests run this with the default wait for gossip and with
// members that ask at once.
//
// What a head shows missing, for the messages of an epoch both hold: the
// head's digest differs from this member's and it counts more messages,
// or as many (see behind). The one that counts fewer is left to ask; the
// other, serving its request, sees in the envelopes it lists as held any
// that it lacks itself (a message it never saw, or refuses), and asks it
// back. So two members end with the union, and a member that only lacks
// is not asked for nothing. A request for logs that brought nothing is
// not made again until the digests on either side, or this member's tip,
// change; one peer at a time is asked for an unknown tip or a log (the
// others would send the same), another when that request times out.
// A request says what it holds of each log the responder may send, so
// that nothing comes twice: as a list of envelope ids, or, where the
// responder's last head shows the two logs differ by much less than the
// log holds, as a sketch of them (logSketch) in about the size of the
// difference; a sketch that does not peel is answered with what did and
// a relist, and the next one is larger. An ask back that brought nothing
// is not made again until something it depends on changes either (see
// backView): two members can differ for good by envelopes neither can
// send (one refused them, the other never saw them).
//
// Proposals are in no digest, so no head shows a member that it lacks
// one. A proposer commits its own proposals in its turn, but not its
// leave (a SelfRemove): while its leave waits in its tip epoch past the
// preferred and the next committer's time, it asks each member whose
// head is on that epoch (once per SyncTimeout), and one that lacks the
// proposal sees it among what the request lists as held and asks back
// for it. So a leave that every other member missed is committed once
// one of them is back.
//
// Votes. A member sends a head when its epoch changes, at most every
// HeadInterval, and every HeadKeepalive; the committer of a new epoch
// votes for it sooner (at most every HeadInterval/8): the epoch's
// finality, and so the Welcome of a member it added, waits for its vote
// (the committer saves its Welcomes with its state until they go out, so
// that a crash in between does not strand the members it added).
// Heads travel by gossip: those sent during a partition never
// cross it, and a removed member sends no more (but one, for the last
// epoch it was a member of, when the fork choice moved it onto the branch
// that removed it: its previous head would keep counting for the branch it
// left), so two members that both hold the two branches of a fork can
// still count different votes and choose differently. A member that keeps
// seeing heads from another branch it has held for a SyncTimeout asks
// that member for all the signed heads it holds (at most once per
// SyncTimeout) and counts the newer ones; with the union of the votes
// both choose alike.
//
// Removal. A member removed on a branch it cannot read learns it from the
// members on that branch: asked for catch-up, they refuse it as removed,
// naming the last epoch it shares with them and sending the commit that
// removed it, with the signed heads of the fork point's members that vote
// on that branch, once per branch (asked again, or by a member whose
// requests list the opaque epoch that commit made here, a member gives the
// bare refusal naming the fork point, and the refuser's vote counts on the
// removing branch all the same). The member records that commit as an opaque epoch and
// counts the refusers' votes, and the relayed ones, there, so the fork
// choice, not one peer's word, decides whether it is out (a refuser can
// leave heads out but not forge one). A refuser's later heads, for epochs
// the member cannot hold, count there too, though the refuser is no
// member of its canonical epoch: verified with its key in a held epoch
// (placedSigner); dropped, its older vote counted elsewhere, and two sides
// that removed each other kept their own branches. A member alone in its
// epoch that a live member refuses is out too: nobody is left to vouch
// for its branch.
// A member that holds itself removed asks at most one peer per
// SyncTimeout, and a peer that refused it not again for removedRecheck
// SyncTimeouts, nor after that while the peer's heads name the tip it
// refused from (that tip would refuse it again; a rare re-check after
// removedQuietRecheck covers heads it cannot verify): heads of the
// others, and of epochs it holds, still count, so a removal that loses
// brings it back, and once the removing branch is quiet it stops
// asking. A Welcome it cannot read (added again on the winning branch,
// with the KeyPackage it spent) ends that wait, and its requests then
// ask for a GroupInfo to rejoin from.
// Its intents to remove members are carried into a history that starts
// over (a rejoin), and redone if that history lacks them.
//
// Membership (DESIGN.md, "Threat model"). Only members of an epoch this
// member holds are asked for catch-up or answered. Gossip from an author
// that is a member of no held epoch is dropped before anything is kept:
// ignored if it names an epoch not held here (this member may be behind),
// refused if it names one that is (Output.Verdict tells the transport,
// whose peer scoring then prunes floods). A catch-up request names its
// requester, its responder and its time under the requester's signature;
// it is served only to that requester, on the stream of that peer, by that
// responder, while fresh, and only if the signer is the requester's leaf
// in a held epoch; otherwise the answer is a bare refusal that tells
// nothing of the group. A GroupInfo goes only to a member rejoining its
// own leaf, and an external commit is accepted only as such a resync: it
// replaces exactly one leaf, of the same client (mls/group checks RFC 9420
// §12.4.3.2), leaves the members as they were, and its member has not been
// removed on the canonical chain by an epoch final here (checkResync; a
// removal not final yet races the resync as any commit does). New members
// come in only through a member's commit and Welcome. Envelopes buffered
// for epochs not known yet are bounded in count and bytes, for the group
// and per sender. A commit made here includes at most
// Config.MaxProposalsPerSender cached proposals of one member, so that a
// member flooding an epoch with proposals makes no commit larger or
// slower to check than that; a member's own changes a commit left out
// are proposed again in the next epoch.
//
// Hostile input. Envelopes that do not decode, messages that do not
// authenticate, replays and messages from non-members are dropped with a
// notice and change nothing. An application message whose sender is not a
// member of the canonical epoch is refused too, though it authenticates in
// an older epoch: a removed member still holds that epoch's keys. A commit
// from such a member on an epoch where it was a member is valid MLS and is
// kept as a sibling (so that every member sees the same graph), where it
// loses.
//
// Loop is the state machine of one member in one group. It is
// deterministic: time and randomness come in with the events and the
// configuration, and it performs no I/O. It returns what to persist,
// publish, request, answer and deliver; the caller (the node, or the
// simulator in ordering/sim) carries that out, persisting before anything
// else leaves the member. The one read it makes is through an Archive, if
// the configuration has one: large application messages (file chunks)
// leave memory once saved and are read back from the caller's store when
// they must be re-sent or served to a member catching up.
//
// Cost. The fork choice's tallies (Node.endorse) are kept per epoch and
// moved by one walk to the root per vote, so a head costs O(depth) and a
// fork choice O(forks), not O(members) per fork; a 1,000-member group
// stays cheap to follow (ordering/sim/RESULTS.md).
package ordering
