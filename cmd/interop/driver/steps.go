package driver

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
)

// step runs one action of the script.
func (x *execution) step(i int, st Step) error {
	switch st.Action {
	case "createGroup":
		return x.createGroup(i, st)
	case "createKeyPackage":
		kp, err := x.createKeyPackage(st.Actor)
		x.put(i, "key_package", kp)
		return err
	case "joinGroup":
		return x.joinGroupStep(st)
	case "externalJoin":
		return x.externalJoin(i, st)
	case "installExternalPSK":
		return x.installExternalPSK(i, st)
	case "groupInfo":
		return x.groupInfoStep(i, st)
	case "addProposal", "updateProposal", "removeProposal", "externalPSKProposal", "resumptionPSKProposal", "groupContextExtensionsProposal":
		return x.proposal(i, st)
	case "fullCommit":
		return x.fullCommit(i, st)
	case "commit":
		return x.commitStep(i, st)
	case "handleCommit":
		return x.handleCommitStep(st)
	case "handlePendingCommit":
		_, err := x.handlePending(st.Actor)
		return err
	case "protect":
		return x.protect(i, st)
	case "unprotect":
		return x.unprotect(i, st)
	case "reinit":
		return x.reinit(st)
	case "branch":
		return x.branch(st)
	case "newMemberAddProposal":
		return x.newMemberAddProposal(i, st)
	case "addExternalSigner":
		return x.addExternalSigner(i, st)
	case "externalSignerProposal":
		return x.externalSignerProposal(i, st)
	}
	return fmt.Errorf("driver: unknown action %q", st.Action)
}

// pathOptions are the force_path and external_tree options, under both
// spellings the configuration files use.
type pathOptions struct {
	ForcePath       bool `json:"force_path"`
	ExternalTree    bool `json:"external_tree"`
	ForcePathAlt    bool `json:"forcePath"`
	ExternalTreeAlt bool `json:"externalTree"`
}

func (o pathOptions) force() bool    { return o.ForcePath || o.ForcePathAlt }
func (o pathOptions) external() bool { return o.ExternalTree || o.ExternalTreeAlt }

type extension struct {
	Type uint32 `json:"extension_type"`
	Data []byte `json:"extension_data"`
}

func protoExtensions(in []extension) []*mlsclient.Extension {
	out := make([]*mlsclient.Extension, len(in))
	for i, e := range in {
		out[i] = &mlsclient.Extension{ExtensionType: e.Type, ExtensionData: e.Data}
	}
	return out
}

// description is a proposal described in a script.
type description struct {
	ProposalType      string      `json:"proposalType"`
	KeyPackage        int         `json:"keyPackage"`
	Removed           string      `json:"removed"`
	PSKID             int         `json:"pskID"`
	EpochID           uint64      `json:"epochID"`
	Extensions        []extension `json:"extensions"`
	ChangeGroupID     bool        `json:"changeGroupID"`
	ChangeCipherSuite bool        `json:"changeCipherSuite"`
}

func (x *execution) description(d description) (*mlsclient.ProposalDescription, error) {
	out := &mlsclient.ProposalDescription{ProposalType: []byte(d.ProposalType)}
	var err error
	switch d.ProposalType {
	case "add":
		out.KeyPackage, err = x.get(d.KeyPackage, "key_package")
	case "remove":
		out.RemovedId = []byte(d.Removed)
	case "externalPSK":
		out.PskId, err = x.get(d.PSKID, "psk_id")
	case "resumptionPSK":
		out.EpochId = d.EpochID
	case "groupContextExtensions":
		out.Extensions = protoExtensions(d.Extensions)
	case "reinit":
		out.Extensions = protoExtensions(d.Extensions)
		if d.ChangeCipherSuite {
			if err := x.changeSuite(); err != nil {
				return nil, err
			}
		}
		out.CipherSuite = x.Suite
		out.GroupId, err = x.newGroupID(d.ChangeGroupID)
	default:
		err = fmt.Errorf("driver: unknown proposal type %q", d.ProposalType)
	}
	return out, err
}

func (x *execution) descriptions(ds []description) ([]*mlsclient.ProposalDescription, error) {
	out := make([]*mlsclient.ProposalDescription, len(ds))
	for i, d := range ds {
		var err error
		if out[i], err = x.description(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (x *execution) createKeyPackage(actor string) ([]byte, error) {
	c, err := x.client(actor)
	if err != nil {
		return nil, err
	}
	resp, err := call(x, c.RPC.CreateKeyPackage, &mlsclient.CreateKeyPackageRequest{CipherSuite: x.Suite, Identity: []byte(actor)})
	if err != nil {
		return nil, fmt.Errorf("%s CreateKeyPackage: %w", actor, err)
	}
	x.txID[actor] = x.track(c, resp.TransactionId)
	return resp.KeyPackage, nil
}

// join has actor join with its pending KeyPackage.
func (x *execution) join(actor string, welcome, tree []byte) ([]byte, error) {
	c, err := x.client(actor)
	if err != nil {
		return nil, err
	}
	tx, ok := x.txID[actor]
	if !ok {
		return nil, fmt.Errorf("driver: %s has no KeyPackage", actor)
	}
	resp, err := call(x, c.RPC.JoinGroup, &mlsclient.JoinGroupRequest{
		TransactionId: tx, Welcome: welcome, EncryptHandshake: x.Encrypt, Identity: []byte(actor), RatchetTree: tree,
	})
	if err != nil {
		return nil, fmt.Errorf("%s JoinGroup: %w", actor, err)
	}
	x.stateID[actor] = x.track(c, resp.StateId)
	return resp.EpochAuthenticator, nil
}

func (x *execution) commit(actor string, byRef [][]byte, byValue []*mlsclient.ProposalDescription, opts pathOptions) (*mlsclient.CommitResponse, error) {
	c, err := x.client(actor)
	if err != nil {
		return nil, err
	}
	resp, err := call(x, c.RPC.Commit, &mlsclient.CommitRequest{
		StateId: x.stateID[actor], ByReference: byRef, ByValue: byValue, ForcePath: opts.force(), ExternalTree: opts.external(),
	})
	if err != nil {
		return nil, fmt.Errorf("%s Commit: %w", actor, err)
	}
	return resp, nil
}

func (x *execution) handlePending(actor string) ([]byte, error) {
	c, err := x.client(actor)
	if err != nil {
		return nil, err
	}
	resp, err := call(x, c.RPC.HandlePendingCommit, &mlsclient.HandlePendingCommitRequest{StateId: x.stateID[actor]})
	if err != nil {
		return nil, fmt.Errorf("%s HandlePendingCommit: %w", actor, err)
	}
	x.stateID[actor] = x.track(c, resp.StateId)
	return resp.EpochAuthenticator, nil
}

func (x *execution) handleCommit(actor string, byRef [][]byte, commit []byte) ([]byte, error) {
	c, err := x.client(actor)
	if err != nil {
		return nil, err
	}
	resp, err := call(x, c.RPC.HandleCommit, &mlsclient.HandleCommitRequest{StateId: x.stateID[actor], Proposal: byRef, Commit: commit})
	if err != nil {
		return nil, fmt.Errorf("%s HandleCommit: %w", actor, err)
	}
	x.stateID[actor] = x.track(c, resp.StateId)
	return resp.EpochAuthenticator, nil
}

func (x *execution) groupInfo(actor string, external bool) (*mlsclient.GroupInfoResponse, error) {
	c, err := x.client(actor)
	if err != nil {
		return nil, err
	}
	resp, err := call(x, c.RPC.GroupInfo, &mlsclient.GroupInfoRequest{StateId: x.stateID[actor], ExternalTree: external})
	if err != nil {
		return nil, fmt.Errorf("%s GroupInfo: %w", actor, err)
	}
	return resp, nil
}

// createGroup creates the group and, when the step lists members, adds
// them with one commit of Add proposals by value.
func (x *execution) createGroup(i int, st Step) error {
	p, err := decode[struct {
		Members []string `json:"members"`
	}](st)
	if err != nil {
		return err
	}
	c, err := x.client(st.Actor)
	if err != nil {
		return err
	}
	gid := newGroupID()
	resp, err := call(x, c.RPC.CreateGroup, &mlsclient.CreateGroupRequest{GroupId: gid, CipherSuite: x.Suite, EncryptHandshake: x.Encrypt, Identity: []byte(st.Actor)})
	if err != nil {
		return fmt.Errorf("%s CreateGroup: %w", st.Actor, err)
	}
	x.stateID[st.Actor] = x.track(c, resp.StateId)
	x.put(i, "group_id", gid)
	if len(p.Members) == 0 {
		return nil
	}
	var adds []*mlsclient.ProposalDescription
	for _, m := range p.Members {
		kp, err := x.createKeyPackage(m)
		if err != nil {
			return err
		}
		adds = append(adds, &mlsclient.ProposalDescription{ProposalType: []byte("add"), KeyPackage: kp})
	}
	cr, err := x.commit(st.Actor, nil, adds, pathOptions{})
	if err != nil {
		return err
	}
	auth, err := x.handlePending(st.Actor)
	if err != nil {
		return err
	}
	for _, m := range p.Members {
		got, err := x.join(m, cr.Welcome, nil)
		if err != nil {
			return err
		}
		if err := agree(m, got, auth); err != nil {
			return err
		}
	}
	return nil
}

func (x *execution) joinGroupStep(st Step) error {
	p, err := decode[struct {
		Welcome int `json:"welcome"`
	}](st)
	if err != nil {
		return err
	}
	welcome, err := x.get(p.Welcome, "welcome")
	if err != nil {
		return err
	}
	tree := x.outputs[p.Welcome]["ratchet_tree"]
	_, err = x.join(st.Actor, welcome, tree)
	return err
}

// externalJoin has the joiner join by external commit from the actor's
// GroupInfo; the actor and the listed members process the commit.
func (x *execution) externalJoin(i int, st Step) error {
	p, err := decode[struct {
		Joiner      string   `json:"joiner"`
		Members     []string `json:"members"`
		RemovePrior bool     `json:"removePrior"`
		PSKs        []int    `json:"psks"`
		pathOptions
	}](st)
	if err != nil {
		return err
	}
	gi, err := x.groupInfo(st.Actor, p.external())
	if err != nil {
		return err
	}
	x.put(i, "group_info", gi.GroupInfo)
	x.put(i, "ratchet_tree", gi.RatchetTree)
	var psks []*mlsclient.PreSharedKey
	for _, j := range p.PSKs {
		id, err := x.get(j, "psk_id")
		if err != nil {
			return err
		}
		secret, err := x.get(j, "psk_secret")
		if err != nil {
			return err
		}
		psks = append(psks, &mlsclient.PreSharedKey{PskId: id, PskSecret: secret})
	}
	c, err := x.client(p.Joiner)
	if err != nil {
		return err
	}
	resp, err := call(x, c.RPC.ExternalJoin, &mlsclient.ExternalJoinRequest{
		GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree, EncryptHandshake: x.Encrypt,
		Identity: []byte(p.Joiner), RemovePrior: p.RemovePrior, Psks: psks,
	})
	if err != nil {
		return fmt.Errorf("%s ExternalJoin: %w", p.Joiner, err)
	}
	x.stateID[p.Joiner] = x.track(c, resp.StateId)
	x.put(i, "commit", resp.Commit)
	x.put(i, "epoch_authenticator", resp.EpochAuthenticator)
	for _, m := range append(p.Members, st.Actor) {
		got, err := x.handleCommit(m, nil, resp.Commit)
		if err != nil {
			return err
		}
		if err := agree(m, got, resp.EpochAuthenticator); err != nil {
			return err
		}
	}
	return nil
}

// installExternalPSK gives the listed clients a fresh external PSK.
func (x *execution) installExternalPSK(i int, st Step) error {
	p, err := decode[struct {
		Clients []string `json:"clients"`
	}](st)
	if err != nil {
		return err
	}
	id, secret := randomBytes(32), randomBytes(32)
	x.put(i, "psk_id", id)
	x.put(i, "psk_secret", secret)
	for _, name := range p.Clients {
		c, err := x.client(name)
		if err != nil {
			return err
		}
		target, ok := x.stateID[name]
		if !ok {
			target = x.txID[name]
		}
		if _, err := call(x, c.RPC.StorePSK, &mlsclient.StorePSKRequest{StateOrTransactionId: target, PskId: id, PskSecret: secret}); err != nil {
			return fmt.Errorf("%s StorePSK: %w", name, err)
		}
	}
	return nil
}

func (x *execution) groupInfoStep(i int, st Step) error {
	p, err := decode[pathOptions](st)
	if err != nil {
		return err
	}
	gi, err := x.groupInfo(st.Actor, p.external())
	if err != nil {
		return err
	}
	x.put(i, "group_info", gi.GroupInfo)
	x.put(i, "ratchet_tree", gi.RatchetTree)
	return nil
}

// proposal runs the actions that make one proposal from a member.
func (x *execution) proposal(i int, st Step) error {
	p, err := decode[struct {
		KeyPackage int         `json:"keyPackage"`
		Removed    string      `json:"removed"`
		PSKID      int         `json:"pskID"`
		EpochID    uint64      `json:"epochID"`
		Extensions []extension `json:"extensions"`
	}](st)
	if err != nil {
		return err
	}
	c, err := x.client(st.Actor)
	if err != nil {
		return err
	}
	id := x.stateID[st.Actor]
	var resp *mlsclient.ProposalResponse
	switch st.Action {
	case "addProposal":
		var kp []byte
		if kp, err = x.get(p.KeyPackage, "key_package"); err == nil {
			resp, err = call(x, c.RPC.AddProposal, &mlsclient.AddProposalRequest{StateId: id, KeyPackage: kp})
		}
	case "updateProposal":
		resp, err = call(x, c.RPC.UpdateProposal, &mlsclient.UpdateProposalRequest{StateId: id})
	case "removeProposal":
		resp, err = call(x, c.RPC.RemoveProposal, &mlsclient.RemoveProposalRequest{StateId: id, RemovedId: []byte(p.Removed)})
	case "externalPSKProposal":
		var psk []byte
		if psk, err = x.get(p.PSKID, "psk_id"); err == nil {
			resp, err = call(x, c.RPC.ExternalPSKProposal, &mlsclient.ExternalPSKProposalRequest{StateId: id, PskId: psk})
		}
	case "resumptionPSKProposal":
		resp, err = call(x, c.RPC.ResumptionPSKProposal, &mlsclient.ResumptionPSKProposalRequest{StateId: id, EpochId: p.EpochID})
	case "groupContextExtensionsProposal":
		resp, err = call(x, c.RPC.GroupContextExtensionsProposal, &mlsclient.GroupContextExtensionsProposalRequest{StateId: id, Extensions: protoExtensions(p.Extensions)})
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", st.Actor, st.Action, err)
	}
	x.put(i, "proposal", resp.Proposal)
	return nil
}

type commitParams struct {
	ByReference []int         `json:"byReference"`
	ByValue     []description `json:"byValue"`
	pathOptions
}

func (x *execution) commitOf(i int, st Step, p commitParams) (byRef [][]byte, resp *mlsclient.CommitResponse, err error) {
	if byRef, err = x.gets(p.ByReference, "proposal"); err != nil {
		return nil, nil, err
	}
	byValue, err := x.descriptions(p.ByValue)
	if err != nil {
		return nil, nil, err
	}
	if resp, err = x.commit(st.Actor, byRef, byValue, p.pathOptions); err != nil {
		return nil, nil, err
	}
	x.put(i, "commit", resp.Commit)
	x.put(i, "welcome", resp.Welcome)
	if p.external() {
		x.put(i, "ratchet_tree", resp.RatchetTree)
	}
	return byRef, resp, nil
}

// fullCommit has the actor commit and adopt it, the members process it,
// and the joiners join; all must agree on the new epoch.
func (x *execution) fullCommit(i int, st Step) error {
	p, err := decode[struct {
		commitParams
		Members []string `json:"members"`
		Joiners []string `json:"joiners"`
	}](st)
	if err != nil {
		return err
	}
	byRef, resp, err := x.commitOf(i, st, p.commitParams)
	if err != nil {
		return err
	}
	auth, err := x.handlePending(st.Actor)
	if err != nil {
		return err
	}
	x.put(i, "epoch_authenticator", auth)
	for _, m := range p.Members {
		got, err := x.handleCommit(m, byRef, resp.Commit)
		if err != nil {
			return err
		}
		if err := agree(m, got, auth); err != nil {
			return err
		}
	}
	var tree []byte
	if p.external() {
		tree = resp.RatchetTree
	}
	for _, j := range p.Joiners {
		got, err := x.join(j, resp.Welcome, tree)
		if err != nil {
			return err
		}
		if err := agree(j, got, auth); err != nil {
			return err
		}
	}
	return nil
}

func (x *execution) commitStep(i int, st Step) error {
	p, err := decode[commitParams](st)
	if err != nil {
		return err
	}
	_, _, err = x.commitOf(i, st, p)
	return err
}

func (x *execution) handleCommitStep(st Step) error {
	p, err := decode[struct {
		Commit      int   `json:"commit"`
		ByReference []int `json:"byReference"`
	}](st)
	if err != nil {
		return err
	}
	commit, err := x.get(p.Commit, "commit")
	if err != nil {
		return err
	}
	byRef, err := x.gets(p.ByReference, "proposal")
	if err != nil {
		return err
	}
	_, err = x.handleCommit(st.Actor, byRef, commit)
	return err
}

func (x *execution) protect(i int, st Step) error {
	p, err := decode[struct {
		AuthenticatedData string `json:"authenticatedData"`
		Plaintext         string `json:"plaintext"`
	}](st)
	if err != nil {
		return err
	}
	c, err := x.client(st.Actor)
	if err != nil {
		return err
	}
	aad, pt := []byte(p.AuthenticatedData), []byte(p.Plaintext)
	resp, err := call(x, c.RPC.Protect, &mlsclient.ProtectRequest{StateId: x.stateID[st.Actor], AuthenticatedData: aad, Plaintext: pt})
	if err != nil {
		return fmt.Errorf("%s Protect: %w", st.Actor, err)
	}
	x.put(i, "authenticatedData", aad)
	x.put(i, "plaintext", pt)
	x.put(i, "ciphertext", resp.Ciphertext)
	return nil
}

func (x *execution) unprotect(i int, st Step) error {
	p, err := decode[struct {
		Ciphertext int `json:"ciphertext"`
	}](st)
	if err != nil {
		return err
	}
	ct, err := x.get(p.Ciphertext, "ciphertext")
	if err != nil {
		return err
	}
	c, err := x.client(st.Actor)
	if err != nil {
		return err
	}
	resp, err := call(x, c.RPC.Unprotect, &mlsclient.UnprotectRequest{StateId: x.stateID[st.Actor], Ciphertext: ct})
	if err != nil {
		return fmt.Errorf("%s Unprotect: %w", st.Actor, err)
	}
	if !bytes.Equal(resp.AuthenticatedData, x.outputs[p.Ciphertext]["authenticatedData"]) || !bytes.Equal(resp.Plaintext, x.outputs[p.Ciphertext]["plaintext"]) {
		return fmt.Errorf("%w: %s decrypted other data than was sent", ErrMismatch, st.Actor)
	}
	x.put(i, "authenticatedData", resp.AuthenticatedData)
	x.put(i, "plaintext", resp.Plaintext)
	return nil
}

// sortedSet returns the names in add less those in remove, sorted.
func sortedSet(add []string, remove ...string) []string {
	set := map[string]bool{}
	for _, a := range add {
		if a != "" {
			set[a] = true
		}
	}
	for _, r := range remove {
		delete(set, r)
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
