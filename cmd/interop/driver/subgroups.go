package driver

import (
	"fmt"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
)

// reinit runs a whole reinitialization: a ReInit proposal (or an external
// one made earlier), its commit, processed by everyone, and the new group
// created by the welcomer and joined by the others.
func (x *execution) reinit(st Step) error {
	p, err := decode[struct {
		Proposer               string      `json:"proposer"`
		Committer              string      `json:"committer"`
		Welcomer               string      `json:"welcomer"`
		Members                []string    `json:"members"`
		ChangeCipherSuite      bool        `json:"changeCipherSuite"`
		ChangeGroupID          bool        `json:"changeGroupID"`
		Extensions             []extension `json:"extensions"`
		ExternalReinitProposal int         `json:"externalReinitProposal"`
		pathOptions
	}](st)
	if err != nil {
		return err
	}
	everyone := append([]string{p.Proposer, p.Committer, p.Welcomer}, p.Members...)
	notCommitter := sortedSet(everyone, p.Committer)
	notWelcomer := sortedSet(everyone, p.Welcomer)

	groupID, err := x.newGroupID(p.ChangeGroupID)
	if err != nil {
		return err
	}
	if p.ChangeCipherSuite {
		if err := x.changeSuite(); err != nil {
			return err
		}
	}
	var proposal []byte
	if p.Proposer != "" {
		c, err := x.client(p.Proposer)
		if err != nil {
			return err
		}
		resp, err := call(x, c.RPC.ReInitProposal, &mlsclient.ReInitProposalRequest{
			StateId: x.stateID[p.Proposer], CipherSuite: x.Suite, GroupId: groupID, Extensions: protoExtensions(p.Extensions),
		})
		if err != nil {
			return fmt.Errorf("%s ReInitProposal: %w", p.Proposer, err)
		}
		proposal = resp.Proposal
	} else if proposal, err = x.get(p.ExternalReinitProposal, "proposal"); err != nil {
		return err
	}
	byRef := [][]byte{proposal}

	reinitID := map[string]uint32{}
	keyPackage := map[string][]byte{}
	c, err := x.client(p.Committer)
	if err != nil {
		return err
	}
	cr, err := call(x, c.RPC.ReInitCommit, &mlsclient.CommitRequest{StateId: x.stateID[p.Committer], ByReference: byRef})
	if err != nil {
		return fmt.Errorf("%s ReInitCommit: %w", p.Committer, err)
	}
	pr, err := call(x, c.RPC.HandlePendingReInitCommit, &mlsclient.HandlePendingCommitRequest{StateId: x.stateID[p.Committer]})
	if err != nil {
		return fmt.Errorf("%s HandlePendingReInitCommit: %w", p.Committer, err)
	}
	reinitID[p.Committer], keyPackage[p.Committer] = x.track(c, pr.ReinitId), pr.KeyPackage
	for _, m := range notCommitter {
		c, err := x.client(m)
		if err != nil {
			return err
		}
		resp, err := call(x, c.RPC.HandleReInitCommit, &mlsclient.HandleCommitRequest{StateId: x.stateID[m], Proposal: byRef, Commit: cr.Commit})
		if err != nil {
			return fmt.Errorf("%s HandleReInitCommit: %w", m, err)
		}
		if err := agree(m, resp.EpochAuthenticator, pr.EpochAuthenticator); err != nil {
			return err
		}
		reinitID[m], keyPackage[m] = x.track(c, resp.ReinitId), resp.KeyPackage
	}

	var kps [][]byte
	for _, m := range notWelcomer {
		kps = append(kps, keyPackage[m])
	}
	c, err = x.client(p.Welcomer)
	if err != nil {
		return err
	}
	wr, err := call(x, c.RPC.ReInitWelcome, &mlsclient.ReInitWelcomeRequest{
		ReinitId: reinitID[p.Welcomer], KeyPackage: kps, ForcePath: p.force(), ExternalTree: p.external(),
	})
	if err != nil {
		return fmt.Errorf("%s ReInitWelcome: %w", p.Welcomer, err)
	}
	x.stateID[p.Welcomer] = x.track(c, wr.StateId)
	var tree []byte
	if p.external() {
		tree = wr.RatchetTree
	}
	for _, m := range notWelcomer {
		c, err := x.client(m)
		if err != nil {
			return err
		}
		resp, err := call(x, c.RPC.HandleReInitWelcome, &mlsclient.HandleReInitWelcomeRequest{ReinitId: reinitID[m], Welcome: wr.Welcome, RatchetTree: tree})
		if err != nil {
			return fmt.Errorf("%s HandleReInitWelcome: %w", m, err)
		}
		if err := agree(m, resp.EpochAuthenticator, wr.EpochAuthenticator); err != nil {
			return err
		}
		x.stateID[m] = x.track(c, resp.StateId)
	}
	return nil
}

// branch has the actor create a subgroup with the members' new
// KeyPackages, which they join.
func (x *execution) branch(st Step) error {
	p, err := decode[struct {
		Members    []string    `json:"members"`
		Extensions []extension `json:"extensions"`
		pathOptions
	}](st)
	if err != nil {
		return err
	}
	var kps [][]byte
	for _, m := range p.Members {
		kp, err := x.createKeyPackage(m)
		if err != nil {
			return err
		}
		kps = append(kps, kp)
	}
	c, err := x.client(st.Actor)
	if err != nil {
		return err
	}
	br, err := call(x, c.RPC.CreateBranch, &mlsclient.CreateBranchRequest{
		StateId: x.stateID[st.Actor], GroupId: newGroupID(), Extensions: protoExtensions(p.Extensions),
		KeyPackages: kps, ForcePath: p.force(), ExternalTree: p.external(),
	})
	if err != nil {
		return fmt.Errorf("%s CreateBranch: %w", st.Actor, err)
	}
	x.stateID[st.Actor] = x.track(c, br.StateId)
	var tree []byte
	if p.external() {
		tree = br.RatchetTree
	}
	for _, m := range p.Members {
		c, err := x.client(m)
		if err != nil {
			return err
		}
		resp, err := call(x, c.RPC.HandleBranch, &mlsclient.HandleBranchRequest{StateId: x.stateID[m], TransactionId: x.txID[m], Welcome: br.Welcome, RatchetTree: tree})
		if err != nil {
			return fmt.Errorf("%s HandleBranch: %w", m, err)
		}
		if err := agree(m, resp.EpochAuthenticator, br.EpochAuthenticator); err != nil {
			return err
		}
		x.stateID[m] = x.track(c, resp.StateId)
	}
	return nil
}

// newMemberAddProposal has the joiner propose its own Add from the
// actor's GroupInfo.
func (x *execution) newMemberAddProposal(i int, st Step) error {
	p, err := decode[struct {
		Joiner string `json:"joiner"`
	}](st)
	if err != nil {
		return err
	}
	gi, err := x.groupInfo(st.Actor, false)
	if err != nil {
		return err
	}
	c, err := x.client(p.Joiner)
	if err != nil {
		return err
	}
	resp, err := call(x, c.RPC.NewMemberAddProposal, &mlsclient.NewMemberAddProposalRequest{GroupInfo: gi.GroupInfo, Identity: []byte(p.Joiner)})
	if err != nil {
		return fmt.Errorf("%s NewMemberAddProposal: %w", p.Joiner, err)
	}
	x.txID[p.Joiner] = x.track(c, resp.TransactionId)
	x.put(i, "proposal", resp.Proposal)
	return nil
}

// addExternalSigner creates an external signer and has the actor propose
// adding it to the group's external senders.
func (x *execution) addExternalSigner(i int, st Step) error {
	p, err := decode[struct {
		Signer string `json:"signer"`
	}](st)
	if err != nil {
		return err
	}
	sc, err := x.client(p.Signer)
	if err != nil {
		return err
	}
	sr, err := call(x, sc.RPC.CreateExternalSigner, &mlsclient.CreateExternalSignerRequest{CipherSuite: x.Suite, Identity: []byte(p.Signer)})
	if err != nil {
		return fmt.Errorf("%s CreateExternalSigner: %w", p.Signer, err)
	}
	x.signer[p.Signer] = x.track(sc, sr.SignerId)
	c, err := x.client(st.Actor)
	if err != nil {
		return err
	}
	resp, err := call(x, c.RPC.AddExternalSigner, &mlsclient.AddExternalSignerRequest{StateId: x.stateID[st.Actor], ExternalSender: sr.ExternalSender})
	if err != nil {
		return fmt.Errorf("%s AddExternalSigner: %w", st.Actor, err)
	}
	x.put(i, "proposal", resp.Proposal)
	return nil
}

// externalSignerProposal has an external signer (the actor) make a
// proposal for the group as a member's GroupInfo describes it.
func (x *execution) externalSignerProposal(i int, st Step) error {
	p, err := decode[struct {
		Member      string      `json:"member"`
		Description description `json:"description"`
	}](st)
	if err != nil {
		return err
	}
	gi, err := x.groupInfo(p.Member, true)
	if err != nil {
		return err
	}
	d, err := x.description(p.Description)
	if err != nil {
		return err
	}
	c, err := x.client(st.Actor)
	if err != nil {
		return err
	}
	resp, err := call(x, c.RPC.ExternalSignerProposal, &mlsclient.ExternalSignerProposalRequest{
		SignerId: x.signer[st.Actor], GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree, Description: d,
	})
	if err != nil {
		return fmt.Errorf("%s ExternalSignerProposal: %w", st.Actor, err)
	}
	x.put(i, "proposal", resp.Proposal)
	return nil
}
